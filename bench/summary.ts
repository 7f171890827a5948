/**
 * Prints what `deno bench --json` wrote (`make bench` saves it in
 * `build/bench/results.json`): the lines the bench files printed, each
 * group's cases with their times, and at the end one table of every group
 * that has a baseline (the C loop, the copying code or the peer tool the
 * case is measured against): job, memkit, peer, ratio (memkit / peer).
 *
 * ```sh
 * deno run --allow-read=build/bench bench/summary.ts build/bench/results.json
 * ```
 *
 * The ratio is of the average times (what `deno bench` compares); the
 * ratio of the fastest samples is beside it, as on a loaded machine the
 * averages carry the other processes' share too.
 *
 * @module
 */

/** One case's statistics, in nanoseconds (Deno 2.9's `deno bench --json`, version 1). */
interface Stats {
  n: number;
  min: number;
  max: number;
  avg: number;
  p75: number;
  p99: number;
}

/** One case as `deno bench --json` reports it. */
interface Bench {
  origin: string;
  group: string | null;
  name: string;
  baseline: boolean;
  results: ({ ok: Stats } | { failed: { message?: string; exceptionMessage?: string } })[];
}

interface Report {
  version: number;
  runtime: string;
  cpu: string;
  benches: Bench[];
}

/** A time in nanoseconds, as `deno bench` shows it. */
export function time(ns: number): string {
  if (ns < 1e3) return `${ns.toFixed(1)} ns`;
  if (ns < 1e6) return `${(ns / 1e3).toFixed(1)} µs`;
  if (ns < 1e9) return `${(ns / 1e6).toFixed(1)} ms`;
  return `${(ns / 1e9).toFixed(2)} s`;
}

/** A ratio, with the word that reads it (below 1 the case is faster than its baseline). */
function ratio(r: number): string {
  return r < 10 ? r.toFixed(2) : r.toFixed(1);
}

/**
 * Splits what `deno bench --json` printed into the bench files' own output
 * and the report (the last JSON object in it, which starts on a line of
 * its own).
 */
export function parse(text: string): { printed: string; report?: Report } {
  const at = text.lastIndexOf('{\n  "version"');
  if (at < 0 || (at > 0 && text[at - 1] !== "\n")) return { printed: text };
  try {
    return { printed: text.slice(0, at), report: JSON.parse(text.slice(at)) as Report };
  } catch {
    return { printed: text };
  }
}

const file = (origin: string) => origin.replace(/^.*\/(bench\/)/, "$1");
/** A case's name without its trailing parenthesis (the versions of the peer), for the table. */
const short = (name: string) => name.replace(/ \([^()]*\)$/, "");

function stats(b: Bench): Stats | string {
  const r = b.results[0];
  if (r === undefined) return "no result";
  if ("ok" in r) return r.ok;
  return `FAILED: ${r.failed.exceptionMessage ?? r.failed.message ?? "unknown"}`;
}

function table(rows: string[][]): string {
  const widths = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  const line = (r: string[]) =>
    `| ${
      r.map((c, i) => (i === 0 || i === 1 || i === 3 ? c.padEnd(widths[i]) : c.padStart(widths[i])))
        .join(" | ")
    } |`;
  return [line(rows[0]), `|${widths.map((w) => "-".repeat(w + 2)).join("|")}|`]
    .concat(rows.slice(1).map(line)).join("\n");
}

/**
 * The rows a bench file printed itself, one `memkit-summary {json}` line
 * each (`job`, `memkit`, `ns`, `peer`, `peerNs`, `load`), for measurements
 * that `deno bench`'s own timing cannot express (bench/channel_bench.ts):
 * the rest of what was printed, and the rows.
 */
export function printedRows(printed: string): { rest: string; rows: string[][] } {
  const rows: string[][] = [];
  const rest: string[] = [];
  for (const line of printed.split("\n")) {
    const at = line.indexOf("memkit-summary {");
    if (at < 0) {
      rest.push(line);
      continue;
    }
    try {
      const r = JSON.parse(line.slice(at + "memkit-summary ".length));
      rows.push([
        `${r.job} (load ${String(r.load).split(" ")[0]})`,
        String(r.memkit),
        time(r.ns),
        String(r.peer),
        time(r.peerNs),
        ratio(r.ns / r.peerNs),
        "-",
      ]);
    } catch {
      rest.push(line);
    }
  }
  return { rest: rest.join("\n"), rows };
}

/** The report as text: the groups with their cases, then the table of ratios (and `extra` rows). */
export function summarize(report: Report, extra: string[][] = []): string {
  const out: string[] = [];
  const groups = new Map<string, Bench[]>();
  for (const b of report.benches) {
    const key = `${file(b.origin)}\0${b.group ?? ""}`;
    groups.set(key, [...groups.get(key) ?? [], b]);
  }
  const rows = [[
    "job",
    "memkit (or the case measured)",
    "time",
    "peer (the baseline)",
    "time",
    "ratio",
    "ratio of mins",
  ]];
  const alone: string[] = [];
  let origin = "";
  for (const [key, benches] of groups) {
    const [where, group] = key.split("\0");
    if (where !== origin) {
      out.push("", where);
      origin = where;
    }
    out.push(`  ${group || "(no group)"}`);
    const base = benches.find((b) => b.baseline);
    const baseStats = base ? stats(base) : undefined;
    for (const b of benches) {
      const s = stats(b);
      if (typeof s === "string") {
        out.push(`    ${b.name}: ${s}`);
        continue;
      }
      let vs = "";
      if (b === base) vs = "  (baseline)";
      else if (baseStats && typeof baseStats !== "string") {
        vs = `  ${ratio(s.avg / baseStats.avg)}x the baseline`;
        rows.push([
          group,
          short(b.name),
          time(s.avg),
          short(base!.name),
          time(baseStats.avg),
          ratio(s.avg / baseStats.avg),
          ratio(s.min / baseStats.min),
        ]);
      } else if (group) alone.push(`${group}: ${short(b.name)} ${time(s.avg)}`);
      out.push(
        `    ${b.name}: ${time(s.avg)} avg (min ${time(s.min)}, p75 ${time(s.p75)}, ` +
          `max ${time(s.max)}, n ${s.n})${vs}`,
      );
    }
  }
  out.push(
    "",
    `Summary (${report.runtime}, ${report.cpu}): ratio = memkit / peer, below 1 memkit is faster`,
  );
  out.push(table(rows.concat(extra)));
  if (alone.length) {
    out.push(
      "",
      "Groups without a baseline in this run (its peer not installed, see above, or filtered out):",
      ...alone.map((a) => `  ${a}`),
    );
  }
  return out.join("\n");
}

if (import.meta.main) {
  const path = Deno.args[0] ?? "build/bench/results.json";
  const { printed, report } = parse(Deno.readTextFileSync(path));
  const { rest, rows } = printedRows(printed);
  if (rest.trim()) console.log(rest.trimEnd());
  if (!report) {
    console.log(`No \`deno bench --json\` report in "${path}" (a bench file failed to load?)`);
    Deno.exit(1);
  }
  console.log(summarize(report, rows));
}
