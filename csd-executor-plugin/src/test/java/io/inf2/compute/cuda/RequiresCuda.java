package io.inf2.compute.cuda;

import java.lang.annotation.ElementType;
import java.lang.annotation.Retention;
import java.lang.annotation.RetentionPolicy;
import java.lang.annotation.Target;
import org.junit.jupiter.api.extension.ConditionEvaluationResult;
import org.junit.jupiter.api.extension.ExecutionCondition;
import org.junit.jupiter.api.extension.ExtendWith;
import org.junit.jupiter.api.extension.ExtensionContext;

/**
 * Runs a test class only where CUDA works; elsewhere (CI has no GPU) its tests are skipped with the
 * reason from {@link CudaBackend#availability()}, e.g. "CUDA not available: libcuda.so.1 not found".
 */
@Target({ElementType.TYPE, ElementType.METHOD})
@Retention(RetentionPolicy.RUNTIME)
@ExtendWith(RequiresCuda.Condition.class)
public @interface RequiresCuda {

    final class Condition implements ExecutionCondition {
        private static volatile CudaBackend.Availability availability;

        @Override
        public ConditionEvaluationResult evaluateExecutionCondition(ExtensionContext context) {
            CudaBackend.Availability a = availability;
            if (a == null) {
                a = CudaBackend.availability();
                availability = a;
                if (!a.available()) {
                    // Skips are silent in Maven's console; say once, visibly, why the GPU tests did not run.
                    System.err.println("GPU tests SKIPPED: " + a.reason());
                }
            }
            return a.available() ? ConditionEvaluationResult.enabled(a.reason())
                    : ConditionEvaluationResult.disabled(a.reason());
        }
    }
}
