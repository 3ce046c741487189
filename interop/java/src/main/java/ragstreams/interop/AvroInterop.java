package ragstreams.interop;

import java.io.BufferedReader;
import java.io.File;
import java.io.InputStreamReader;
import java.io.PrintStream;
import java.nio.ByteBuffer;
import java.nio.charset.StandardCharsets;
import java.util.HexFormat;

import org.apache.avro.Schema;
import org.apache.avro.SchemaNormalization;
import org.apache.avro.generic.GenericData;
import org.apache.avro.generic.GenericDatumReader;
import org.apache.avro.generic.GenericDatumWriter;
import org.apache.avro.generic.GenericRecord;
import org.apache.avro.io.DecoderFactory;
import org.apache.avro.io.EncoderFactory;
import org.apache.avro.io.JsonEncoder;
import org.apache.avro.message.BinaryMessageDecoder;
import org.apache.avro.message.BinaryMessageEncoder;

/**
 * Apache Avro's own single-object encoding, one record per line on stdin/stdout.
 *
 * <pre>
 *   encode SCHEMA.avsc   Avro-JSON record per line  -> hex of BinaryMessageEncoder.encode(record)
 *   decode SCHEMA.avsc   hex per line               -> Avro-JSON of BinaryMessageDecoder.decode(bytes),
 *                                                      or "ERROR ExceptionClass: message"
 *   fingerprint SCHEMA.avsc                          -> SchemaNormalization.parsingFingerprint64 (signed long)
 * </pre>
 */
public final class AvroInterop {
    private AvroInterop() {}

    public static void main(String[] args) throws Exception {
        if (args.length != 2) {
            System.err.println("usage: AvroInterop encode|decode|fingerprint SCHEMA.avsc");
            System.exit(2);
        }
        Schema schema = new Schema.Parser().parse(new File(args[1]));
        PrintStream out = new PrintStream(System.out, true, StandardCharsets.UTF_8);
        switch (args[0]) {
            case "fingerprint" -> out.println(SchemaNormalization.parsingFingerprint64(schema));
            case "encode" -> encode(schema, out);
            case "decode" -> decode(schema, out);
            default -> {
                System.err.println("unknown command " + args[0]);
                System.exit(2);
            }
        }
    }

    private static BufferedReader stdin() {
        return new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
    }

    private static void encode(Schema schema, PrintStream out) throws Exception {
        BinaryMessageEncoder<GenericRecord> encoder = new BinaryMessageEncoder<>(GenericData.get(), schema);
        GenericDatumReader<GenericRecord> reader = new GenericDatumReader<>(schema);
        BufferedReader in = stdin();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            if (line.isBlank()) continue;
            GenericRecord record = reader.read(null, DecoderFactory.get().jsonDecoder(schema, line));
            ByteBuffer buf = encoder.encode(record);
            byte[] bytes = new byte[buf.remaining()];
            buf.get(bytes);
            out.println(HexFormat.of().formatHex(bytes));
        }
    }

    private static void decode(Schema schema, PrintStream out) throws Exception {
        BinaryMessageDecoder<GenericRecord> decoder = new BinaryMessageDecoder<>(GenericData.get(), schema);
        GenericDatumWriter<GenericRecord> writer = new GenericDatumWriter<>(schema);
        BufferedReader in = stdin();
        for (String line = in.readLine(); line != null; line = in.readLine()) {
            if (line.isBlank()) continue;
            try {
                GenericRecord record = decoder.decode(HexFormat.of().parseHex(line.trim()));
                java.io.ByteArrayOutputStream json = new java.io.ByteArrayOutputStream();
                JsonEncoder enc = EncoderFactory.get().jsonEncoder(schema, json);
                writer.write(record, enc);
                enc.flush();
                out.println(json.toString(StandardCharsets.UTF_8));
            } catch (Exception e) {
                out.println("ERROR " + e.getClass().getSimpleName() + ": " + e.getMessage());
            }
        }
    }
}
