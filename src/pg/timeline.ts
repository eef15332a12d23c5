/**
 * Timeline history files (the text TIMELINE_HISTORY returns): one line per ancestor
 * timeline, `<tli>\t<switchpoint LSN>\t<reason>`, where the switchpoint is where that
 * timeline ended and its child began. Pure: text in, LSN out.
 */
import { formatLsn, parseLsn } from "./pgoutput.ts";

/**
 * Where timeline `tli` ended in this history, or null when it is no ancestor. A position
 * saved on `tli` past that point holds changes the server never had (a failover lost them).
 */
export function timelineEnd(history: string, tli: number): bigint | null {
  for (const line of history.split("\n")) {
    const m = /^\s*(\d+)\s+([0-9A-Fa-f]{1,8}\/[0-9A-Fa-f]{1,8})/.exec(line);
    if (m && Number(m[1]) === tli) return parseLsn(m[2]);
  }
  return null;
}

/** The history's text: the walsender sends the file's bytes, a text client may hex them. */
export function historyText(content: string): string {
  if (!/^\\x[0-9a-fA-F]*$/.test(content)) return content;
  const hex = content.slice(2);
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return new TextDecoder().decode(bytes);
}

/** Why a position saved at `at` on timeline `saved` is lost on timeline `now` (if it is). */
export function failoverLoss(
  history: string,
  saved: number,
  now: number,
  at: bigint,
): string | undefined {
  const end = timelineEnd(history, saved);
  if (end === null) return `timeline ${saved} is not in the history of timeline ${now}`;
  if (at <= end) return undefined;
  return `timeline ${saved} ended at ${formatLsn(end)} on this server, before the saved ` +
    `${formatLsn(at)} (a failover lost changes etcd has)`;
}
