package io.inf2.spark;

import io.inf2.output.ResultArrow;
import java.util.ArrayList;
import java.util.List;
import org.apache.arrow.vector.FieldVector;
import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.arrow.vector.types.pojo.ArrowType;
import org.apache.arrow.vector.types.pojo.Field;
import org.apache.spark.sql.types.ArrayType;
import org.apache.spark.sql.types.DataType;
import org.apache.spark.sql.types.DataTypes;
import org.apache.spark.sql.types.StructField;
import org.apache.spark.sql.types.StructType;
import org.apache.spark.sql.vectorized.ArrowColumnVector;
import org.apache.spark.sql.vectorized.ColumnVector;
import org.apache.spark.sql.vectorized.ColumnarArray;
import org.apache.spark.sql.vectorized.ColumnarBatch;
import scala.jdk.javaapi.CollectionConverters;

/**
 * The result columns as Spark sees them: the Spark schema of {@link ResultArrow#SCHEMA}, and the
 * values of an Arrow result batch read through Spark's {@link ArrowColumnVector}s.
 */
final class ResultColumns {

    /** The result columns' Spark schema, in {@link ResultArrow#COLUMNS} order. */
    static final StructType SCHEMA = sparkSchema();

    private ResultColumns() {
    }

    private static StructType sparkSchema() {
        List<StructField> fields = new ArrayList<>();
        for (Field f : ResultArrow.SCHEMA.getFields()) {
            fields.add(DataTypes.createStructField(f.getName(), sparkType(f), f.isNullable()));
        }
        return DataTypes.createStructType(fields);
    }

    private static DataType sparkType(Field f) {
        ArrowType t = f.getType();
        return switch (t) {
            case ArrowType.Utf8 u -> DataTypes.StringType;
            case ArrowType.Int i when i.getBitWidth() == 32 && i.getIsSigned() -> DataTypes.IntegerType;
            case ArrowType.FloatingPoint fp -> DataTypes.DoubleType;
            case ArrowType.List l -> {
                Field element = f.getChildren().getFirst();
                yield DataTypes.createArrayType(sparkType(element), element.isNullable());
            }
            default -> throw new IllegalStateException("result column " + f.getName() + " has Arrow type " + t
                    + ", which ResultColumns does not map to Spark");
        };
    }

    /**
     * Spark's columnar view of a result root. Closing the batch would close the Arrow vectors, which
     * belong to the root: the caller closes the root (and its allocator) instead.
     */
    static ColumnarBatch wrap(VectorSchemaRoot root) {
        ColumnVector[] columns = new ColumnVector[root.getFieldVectors().size()];
        int i = 0;
        for (FieldVector v : root.getFieldVectors()) {
            columns[i++] = new ArrowColumnVector(v);
        }
        return new ColumnarBatch(columns, root.getRowCount());
    }

    /**
     * Copies row {@code row} of the batch into {@code out} starting at {@code offset}, as the external
     * types a Spark {@code Row} holds (String, Integer, Double, scala.collection.Seq), so the values outlive
     * the Arrow buffers.
     */
    static void copyRow(ColumnarBatch batch, int row, Object[] out, int offset) {
        for (int c = 0; c < SCHEMA.fields().length; c++) {
            out[offset + c] = value(batch.column(c), SCHEMA.fields()[c].dataType(), row);
        }
    }

    private static Object value(ColumnVector v, DataType type, int row) {
        if (v.isNullAt(row)) {
            return null;
        }
        if (type.equals(DataTypes.StringType)) {
            return v.getUTF8String(row).toString();
        }
        if (type.equals(DataTypes.IntegerType)) {
            return v.getInt(row);
        }
        if (type.equals(DataTypes.DoubleType)) {
            return v.getDouble(row);
        }
        if (type instanceof ArrayType a) {
            ColumnarArray array = v.getArray(row);
            List<Object> values = new ArrayList<>(array.numElements());
            for (int j = 0; j < array.numElements(); j++) {
                values.add(element(array, a.elementType(), j));
            }
            // A Row's encoder takes arrays as Scala sequences.
            return CollectionConverters.asScala(values).toSeq();
        }
        throw new IllegalStateException("no conversion for result type " + type.simpleString());
    }

    private static Object element(ColumnarArray array, DataType type, int j) {
        if (array.isNullAt(j)) {
            return null;
        }
        if (type.equals(DataTypes.StringType)) {
            return array.getUTF8String(j).toString();
        }
        if (type.equals(DataTypes.IntegerType)) {
            return array.getInt(j);
        }
        throw new IllegalStateException("no conversion for result array element type " + type.simpleString());
    }
}
