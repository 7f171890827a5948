/**
 * The colours of every memkit command: on only when stdout is a terminal and
 * `NO_COLOR` is unset or empty (Deno reads it at startup: no env permission
 * is needed, and none is ever prompted for), or when `--color=always` says so.
 * `--color=never` turns them off. Output read by a program (a pipe, a file,
 * `$(memkit ... --permissions)`) gets no escape codes.
 *
 * @module
 */

/** `--color`: auto (a terminal, without `NO_COLOR`), always or never. */
export type ColorMode = "auto" | "always" | "never";

/** The modes `--color` takes, in the order its help lists them. */
export const COLOR_MODES: readonly ColorMode[] = ["auto", "always", "never"];

let enabled: boolean | undefined;

/**
 * Sets the colour mode for everything printed from now on.
 *
 * @param mode `always`, `never`, or `auto` (colour only when stdout is a
 * terminal and `NO_COLOR` is unset or empty).
 *
 * @example Force colour, then none
 * ```ts
 * import { bold, setColorMode } from "./_colors.ts";
 * import { assertEquals } from "@std/assert";
 *
 * setColorMode("always");
 * assertEquals(bold("x"), "\x1b[1mx\x1b[22m");
 * setColorMode("never");
 * assertEquals(bold("x"), "x");
 * setColorMode("auto");
 * ```
 */
export function setColorMode(mode: ColorMode): void {
  enabled = mode === "always" ? true : mode === "never" ? false : undefined;
}

/**
 * Whether colour is on: the mode set, or for `auto` whether stdout is a
 * terminal and `NO_COLOR` is unset or empty.
 *
 * @returns Whether the style functions add escape codes.
 *
 * @example Never in a test's piped stdout
 * ```ts
 * import { colorEnabled, setColorMode } from "./_colors.ts";
 * import { assertEquals } from "@std/assert";
 *
 * setColorMode("auto");
 * assertEquals(colorEnabled(), Deno.stdout.isTerminal() && !Deno.noColor);
 * ```
 */
export function colorEnabled(): boolean {
  return enabled ?? (!Deno.noColor && Deno.stdout.isTerminal());
}

/** A style: `open`, the text (an inner close re-opened, so that styles nest), `close`. */
function style(open: number, close: number): (text: string) => string {
  const on = `\x1b[${open}m`, off = `\x1b[${close}m`;
  return (text) => colorEnabled() ? on + text.replaceAll(off, off + on) + off : text;
}

/**
 * Bold text, when colour is on.
 *
 * @example Plain when colour is off
 * ```ts
 * import { bold, setColorMode } from "./_colors.ts";
 * import { assertEquals } from "@std/assert";
 *
 * setColorMode("never");
 * assertEquals(bold("Address"), "Address");
 * setColorMode("auto");
 * ```
 */
export const bold: (text: string) => string = style(1, 22);
/**
 * Dim text, when colour is on.
 *
 * @example Dim when colour is forced
 * ```ts
 * import { dim, setColorMode } from "./_colors.ts";
 * import { assertEquals } from "@std/assert";
 *
 * setColorMode("always");
 * assertEquals(dim("note"), "\x1b[2mnote\x1b[22m");
 * setColorMode("auto");
 * ```
 */
export const dim: (text: string) => string = style(2, 22);
/**
 * Red text, when colour is on.
 *
 * @example A failure
 * ```ts
 * import { red } from "./_colors.ts";
 * console.log(red("failed"));
 * ```
 */
export const red: (text: string) => string = style(31, 39);
/**
 * Green text, when colour is on.
 *
 * @example Available
 * ```ts
 * import { green } from "./_colors.ts";
 * console.log(green("available"));
 * ```
 */
export const green: (text: string) => string = style(32, 39);
/**
 * Yellow text, when colour is on.
 *
 * @example A warning
 * ```ts
 * import { yellow } from "./_colors.ts";
 * console.log(yellow("skipped"));
 * ```
 */
export const yellow: (text: string) => string = style(33, 39);
/**
 * Cyan text, when colour is on.
 *
 * @example A title
 * ```ts
 * import { cyan } from "./_colors.ts";
 * console.log(cyan("▸ step"));
 * ```
 */
export const cyan: (text: string) => string = style(36, 39);
