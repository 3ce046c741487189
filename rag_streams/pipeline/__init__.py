"""The Faust app, the stage graph and its runtime, topics: how the stages run."""
