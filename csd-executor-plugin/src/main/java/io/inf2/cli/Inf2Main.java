package io.inf2.cli;

import io.inf2.bench.EngineBench;
import io.inf2.config.Inf2Config;
import io.inf2.config.Setting;
import io.inf2.model.ModelFormatException;
import java.io.PrintStream;
import java.util.List;

/**
 * The {@code inf2} command line: {@code init-model}, {@code generate}, {@code bench}, {@code bench-engine}.
 * Errors are one line on stderr: exit status 2 for bad usage, configuration or input, 1 for a failure
 * while running.
 */
public final class Inf2Main {
    private static final String COMMANDS = "init-model, generate, bench, bench-engine, help";

    private Inf2Main() {
    }

    public static void main(String[] args) {
        System.exit(run(args, System.out, System.err));
    }

    /** Runs one command; returns the exit status. */
    public static int run(String[] args, PrintStream out, PrintStream err) {
        if (args.length == 0 || args[0].equals("help") || args[0].equals("--help") || args[0].equals("-h")) {
            out.print(usage());
            return args.length == 0 ? 2 : 0;
        }
        String command = args[0];
        String[] rest = java.util.Arrays.copyOfRange(args, 1, args.length);
        try {
            if (List.of(rest).contains("--help")) {
                out.print(commandHelp(command));
                return 0;
            }
            switch (command) {
                case "init-model" -> InitModelCommand.run(parse(rest, CliSettings.initModel()), out);
                case "generate" -> GenerateCommand.run(parse(rest, CliSettings.generate()), out, err);
                case "bench" -> BenchCommand.run(parse(rest, BenchCommand.settings()), out, err);
                case "bench-engine" -> EngineBench.run(rest, out, err);
                default -> throw new CliException("unknown command \"" + command + "\" (" + COMMANDS + ")");
            }
            return 0;
        } catch (CliException | ModelFormatException | IllegalArgumentException e) {
            err.println("inf2 " + command + ": " + oneLine(e));
            return 2;
        } catch (RuntimeException e) {
            err.println("inf2 " + command + ": " + oneLine(e));
            return 1;
        }
    }

    /** The message of {@code e}, or its type where it has none, on one line. */
    private static String oneLine(RuntimeException e) {
        String m = e.getMessage() == null ? e.getClass().getSimpleName() : e.getMessage();
        return m.replace('\n', ' ').replace('\r', ' ');
    }

    private static Inf2Config parse(String[] args, List<Setting<?>> catalog) {
        Inf2Config.Parsed parsed = Inf2Config.fromArgs(args, catalog);
        if (!parsed.positional().isEmpty()) {
            throw new CliException("unexpected argument \"" + parsed.positional().get(0) + "\" (options are --name value)");
        }
        return parsed.config();
    }

    static String usage() {
        return """
                usage: inf2 <command> [--option value ...]

                commands:
                  init-model  write a deterministic random-weight Hugging Face checkpoint (config.json,
                              safetensors, tokenizer.json) for a preset: inf2 init-model --preset tiny-opt --out DIR
                  generate    complete the prompts of a JSON Lines file:
                              inf2 generate --model DIR --prompts FILE.jsonl --output OUT.jsonl|OUT.parquet
                  bench       CPU decode benchmark against the measured memory bandwidth (JSON on stdout)
                  bench-engine
                              end-to-end engine throughput on a random-weight model, any engine setting
                              as --set key=value, against bandwidths measured in the same run (JSON):
                              inf2 bench-engine --preset opt-6.7b --set backend=cuda --batches 1,8,32
                  help        this text; 'inf2 <command> --help' lists a command's options
                """;
    }

    private static String commandHelp(String command) {
        List<Setting<?>> catalog = switch (command) {
            case "init-model" -> CliSettings.initModel();
            case "generate" -> CliSettings.generate();
            case "bench" -> BenchCommand.settings();
            case "bench-engine" -> EngineBench.settings();
            default -> throw new CliException("unknown command \"" + command + "\" (" + COMMANDS + ")");
        };
        StringBuilder sb = new StringBuilder("inf2 " + command + " options:\n");
        for (Setting<?> s : catalog) {
            sb.append(String.format("  %-22s %-28s %s%s%n", s.cliFlag(), s.type(), s.doc(),
                    s.defaultValue() == null ? "" : " [default: " + (s.defaultValue().isEmpty() ? "none" : s.defaultValue()) + "]"));
        }
        if (command.equals("init-model")) {
            sb.append("\npresets: ").append(InitModelCommand.presetNames()).append('\n');
        }
        return sb.toString();
    }
}
