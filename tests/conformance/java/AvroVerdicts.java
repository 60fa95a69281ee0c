// Apache Avro's verdict on every evolution case of the conformance suite: one JSON line per case.
//
// Run by tests/conformance/test_avro_conformance.py as a single-file program (no build step):
//   java -cp <avro jars> tests/conformance/java/AvroVerdicts.java <cases dir>
// where <cases dir> holds one folder per case with old.avsc and new.avsc. For each case it parses both
// files with the Java parser with default validation on (the reference for "is this schema valid"), then
// parses them again without it and asks SchemaCompatibility in both directions, so that a case with an
// invalid default still gets a compatibility verdict to compare.

import com.fasterxml.jackson.databind.ObjectMapper;
import com.fasterxml.jackson.databind.node.ArrayNode;
import com.fasterxml.jackson.databind.node.ObjectNode;
import java.io.File;
import java.util.Arrays;
import org.apache.avro.Schema;
import org.apache.avro.SchemaCompatibility;

public final class AvroVerdicts {
  private static final ObjectMapper JSON = new ObjectMapper();

  private AvroVerdicts() {}

  public static void main(String[] args) throws Exception {
    if (args.length != 1) {
      System.err.println("usage: AvroVerdicts <cases dir>");
      System.exit(2);
    }
    File[] cases = new File(args[0]).listFiles(File::isDirectory);
    if (cases == null) {
      System.err.println("not a directory: " + args[0]);
      System.exit(2);
    }
    Arrays.sort(cases);
    for (File dir : cases) {
      System.out.println(JSON.writeValueAsString(verdict(dir)));
    }
  }

  private static ObjectNode verdict(File dir) {
    File oldFile = new File(dir, "old.avsc");
    File newFile = new File(dir, "new.avsc");
    ObjectNode out = JSON.createObjectNode();
    out.put("case", dir.getName());
    out.put("avro_version", Schema.class.getPackage().getImplementationVersion());
    out.set("old_valid", validity(oldFile));
    out.set("new_valid", validity(newFile));
    Schema oldSchema;
    Schema newSchema;
    try {
      oldSchema = new Schema.Parser().setValidateDefaults(false).parse(oldFile);
      newSchema = new Schema.Parser().setValidateDefaults(false).parse(newFile);
    } catch (Exception e) {
      out.put("unparseable", e.getClass().getSimpleName() + ": " + e.getMessage());
      return out;
    }
    out.set("backward", compatibility(newSchema, oldSchema)); // the new version reads old data
    out.set("forward", compatibility(oldSchema, newSchema)); // the old version reads new data
    return out;
  }

  private static ObjectNode validity(File file) {
    ObjectNode out = JSON.createObjectNode();
    try {
      new Schema.Parser().setValidateDefaults(true).parse(file);
      out.put("valid", true);
    } catch (Exception e) {
      out.put("valid", false);
      out.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
    }
    return out;
  }

  private static ObjectNode compatibility(Schema reader, Schema writer) {
    ObjectNode out = JSON.createObjectNode();
    try {
      SchemaCompatibility.SchemaPairCompatibility pair =
          SchemaCompatibility.checkReaderWriterCompatibility(reader, writer);
      out.put("verdict", pair.getType().name());
      ArrayNode problems = out.putArray("incompatibilities");
      for (SchemaCompatibility.Incompatibility i : pair.getResult().getIncompatibilities()) {
        ObjectNode one = problems.addObject();
        one.put("type", i.getType().name());
        one.put("location", i.getLocation());
        one.put("message", i.getMessage());
      }
    } catch (Exception e) {
      // SchemaCompatibility throws on a reader field whose name and aliases match two writer fields.
      out.put("verdict", "ERROR");
      out.put("error", e.getClass().getSimpleName() + ": " + e.getMessage());
    }
    return out;
  }
}
