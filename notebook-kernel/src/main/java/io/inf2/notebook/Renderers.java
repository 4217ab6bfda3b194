package io.inf2.notebook;

import org.apache.arrow.vector.VectorSchemaRoot;
import org.apache.spark.sql.Dataset;
import org.dflib.jjava.jupyter.kernel.display.Renderer;
import org.dflib.jjava.jupyter.kernel.display.mime.MIMEType;

/**
 * Rich forms of the values notebooks produce most: a Spark Dataset or an Arrow VectorSchemaRoot as
 * a table of its first {@link Table#DEFAULT_ROWS} rows. {@link Table} and {@link Chart} render
 * themselves; images (java.awt.image.RenderedImage) are rendered as PNG by the framework.
 */
final class Renderers {
    private Renderers() {
    }

    static void registerAll(Renderer renderer) {
        renderer.createRegistration(Dataset.class)
                .preferring(MIMEType.TEXT_HTML, MIMEType.TEXT_PLAIN)
                .supporting(MIMEType.TEXT_HTML, MIMEType.TEXT_PLAIN)
                .register((data, context) -> Table.of(data).render(context));
        renderer.createRegistration(VectorSchemaRoot.class)
                .preferring(MIMEType.TEXT_HTML, MIMEType.TEXT_PLAIN)
                .supporting(MIMEType.TEXT_HTML, MIMEType.TEXT_PLAIN)
                .register((root, context) -> Table.of(root).render(context));
    }
}
