// The tour's printing helpers (cli/tour.ts): a call as it was made, sizes in
// binary units, lines wrapped at 100 columns, and small strips of pages
// (`view  [b1][a0][a1][b0]`) drawn from what the memory holds.
import { binarySize } from "./_bytes.ts";

/** The tour's line width: no line it prints is longer. */
export const WIDTH = 100;

const ESC = String.fromCharCode(27);
const ANSI = new RegExp(`${ESC}\\[[0-9;]*m`, "g");

/** The columns `text` takes in a terminal (escape codes take none). */
export const columns = (text: string): number => text.replace(ANSI, "").length;

/**
 * `text` broken at spaces into lines of at most {@link WIDTH} columns, the
 * first indented by `indent`, the others by `hang` (two more spaces by default;
 * a single word longer than a line stays whole).
 */
export function wrap(text: string, indent = "  ", hang = indent + "  "): string[] {
  const lines: string[] = [];
  let line = indent;
  let empty = true;
  for (const word of text.split(" ")) {
    if (!empty && columns(line) + 1 + columns(word) > WIDTH) {
      lines.push(line);
      line = hang;
      empty = true;
    }
    line += (empty ? "" : " ") + word;
    empty = false;
  }
  lines.push(line);
  return lines;
}

/** A size in binary units (`16 KiB`, `24 GiB`), as every command prints sizes. */
export const size: (bytes: number) => string = binarySize;

/** A value as TypeScript source: strings quoted, objects `{ key: value }`, bigints in hex. */
export function show(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value);
  if (typeof value === "bigint") return `0x${value.toString(16)}n`;
  if (value instanceof Uint8Array) return `new Uint8Array([${[...value].join(", ")}])`;
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  if (value !== null && typeof value === "object") {
    if (Symbol.for("tour.name") in value) return String((value as Named)[Symbol.for("tour.name")]);
    const entries = Object.entries(value).map(([k, v]) => `${k}: ${show(v)}`);
    return entries.length ? `{ ${entries.join(", ")} }` : "{}";
  }
  return String(value);
}

type Named = { [k: symbol]: string };

/** A stand-in for a variable in a printed call: `show(ref("a"))` is `a`. */
export const ref = (name: string): Named => ({ [Symbol.for("tour.name")]: name });

/** The call `fn(args...)` as the tour made it. */
export const call = (fn: string, ...args: unknown[]): string =>
  `${fn}(${args.map(show).join(", ")})`;

/** One cell per page: `[b1][a0]`. */
export const cells = (labels: string[]): string => labels.map((l) => `[${l}]`).join("");

/**
 * A strip: one row per name, its cells from `labels`, a note after them; the
 * names padded to one width and the notes aligned.
 */
export function strip(rows: [name: string, labels: string[], note: string][]): string[] {
  const name = Math.max(...rows.map(([n]) => n.length));
  const body = Math.max(...rows.map(([, l]) => cells(l).length));
  return rows.map(([n, l, note]) =>
    `${n.padEnd(name)}  ${cells(l).padEnd(body)}${note ? "  " + note : ""}`.trimEnd()
  );
}

/** What a page of `read(offset, 2)` holds as a label: its first two bytes, `··` when zero. */
export function label(
  read: (offset: number, length: number) => Uint8Array,
  offset: number,
): string {
  const b = read(offset, 2);
  return b[0] === 0 ? "··" : new TextDecoder().decode(b);
}
