package io.peft4j.data;

import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.node.ObjectNode;

import java.util.ArrayList;
import java.util.Iterator;
import java.util.List;

/**
 * One record of a data file: its fields as a JSON object (CSV/TSV cells are strings) and where it starts. The
 * accessors fail with a {@link DataException} that names the file, the line and the field.
 */
public record Row(String file, int line, ObjectNode fields) {

    /** Whether the field is present and not JSON null. */
    public boolean has(String field) {
        JsonNode n = fields.get(field);
        return n != null && !n.isNull();
    }

    /** The field's raw value; fails if it is absent. */
    public JsonNode get(String field) {
        JsonNode n = fields.get(field);
        if (n == null) throw error("missing field '" + field + "' (the row has: " + fieldNames() + ")");
        return n;
    }

    /** A string field; fails if it is absent, null or another JSON type. */
    public String string(String field) {
        JsonNode n = get(field);
        if (!n.isTextual()) throw error("field '" + field + "' is " + describe(n) + ", expected a string");
        return n.textValue();
    }

    /** A string field, or {@code ""} when absent or null; fails on another JSON type. */
    public String optString(String field) {
        return has(field) ? string(field) : "";
    }

    /** An error located at this row. */
    public DataException error(String problem) {
        return new DataException(file, line, problem);
    }

    /** The field names, comma-separated, for error messages. */
    public String fieldNames() {
        List<String> names = new ArrayList<>();
        for (Iterator<String> it = fields.fieldNames(); it.hasNext(); ) names.add(it.next());
        return names.isEmpty() ? "no fields" : String.join(", ", names);
    }

    /** "a number", "an array", ... for error messages. */
    static String describe(JsonNode n) {
        if (n == null || n.isMissingNode()) return "missing";
        if (n.isNull()) return "null";
        if (n.isTextual()) return "a string";
        if (n.isIntegralNumber()) return "an integer (" + n.asText() + ")";
        if (n.isNumber()) return "a number (" + n.asText() + ")";
        if (n.isBoolean()) return "a boolean";
        if (n.isArray()) return "an array";
        if (n.isObject()) return "an object";
        return n.getNodeType().toString().toLowerCase();
    }
}
