/**
 * Date and time values of row images, as the server prints them (`YYYY-MM-DD hh:mm:ss`
 * with the column's fractional digits). Pure.
 */
import type { Cursor } from "./cursor.ts";

export const pad = (n: number, w = 2) => String(n).padStart(w, "0");

/** `.ffffff` cut to `fsp` digits, or nothing. */
export function fraction(us: number, fsp: number): string {
  return fsp > 0 ? "." + String(us).padStart(6, "0").slice(0, fsp) : "";
}

/** Fractional seconds of TIME2/DATETIME2/TIMESTAMP2 in microseconds. */
export function fracUs(c: Cursor, fsp: number): number {
  if (fsp <= 0) return 0;
  const n = (fsp + 1) >> 1;
  const v = c.be(n);
  return n === 1 ? v * 10000 : n === 2 ? v * 100 : v;
}

/** YEAR: one byte, years since 1900; 0 is the zero year. */
export function yearText(y: number): string {
  return y === 0 ? "0000" : String(1900 + y);
}

/** DATE: 3 bytes, day | month << 5 | year << 9. */
export function dateText(x: number): string {
  return `${pad(x >> 9, 4)}-${pad((x >> 5) & 15)}-${pad(x & 31)}`;
}

/** Old TIME: 3 bytes holding hhmmss as a decimal number. */
export function timeText(x: number): string {
  const s = String(x).padStart(6, "0");
  return `${s.slice(0, -4)}:${s.slice(-4, -2)}:${s.slice(-2)}`;
}

/** Old DATETIME: 8 bytes holding YYYYMMDDhhmmss as a decimal number. */
export function datetimeText(x: bigint): string {
  const s = x.toString().padStart(14, "0");
  return `${s.slice(0, 4)}-${s.slice(4, 6)}-${s.slice(6, 8)} ${s.slice(8, 10)}:${s.slice(10, 12)}:${
    s.slice(12, 14)
  }`;
}

export function time2(c: Cursor, fsp: number): string {
  // MySQL's packed TIME: ((hours<<12 | minutes<<6 | seconds) << 24) + microseconds, signed.
  let packed: number;
  if (fsp >= 5) packed = c.be(6) - 0x800000000000;
  else {
    let intpart = c.be(3) - 0x800000;
    let frac = 0;
    if (fsp >= 1) {
      const n = (fsp + 1) >> 1;
      frac = c.be(n);
      if (intpart < 0 && frac) {
        intpart++;
        frac -= n === 1 ? 0x100 : 0x10000;
      }
      frac *= n === 1 ? 10000 : 100;
    }
    packed = intpart * 0x1000000 + frac;
  }
  const neg = packed < 0;
  const a = Math.abs(packed);
  const hms = Math.floor(a / 0x1000000);
  const us = a % 0x1000000;
  const h = (hms >> 12) & 0x3ff, m = (hms >> 6) & 63, s = hms & 63;
  return `${neg ? "-" : ""}${pad(h)}:${pad(m)}:${pad(s)}${fraction(us, fsp)}`;
}

export function datetime2(c: Cursor, fsp: number): string {
  const v = c.be(5) - 0x8000000000;
  const us = fracUs(c, fsp);
  const ymd = Math.floor(v / 0x20000);
  const hms = v % 0x20000;
  const ym = Math.floor(ymd / 32);
  const day = ymd % 32, year = Math.floor(ym / 13), month = ym % 13;
  const h = hms >> 12, m = (hms >> 6) & 63, s = hms & 63;
  return `${pad(year, 4)}-${pad(month)}-${pad(day)} ${pad(h)}:${pad(m)}:${pad(s)}${
    fraction(us, fsp)
  }`;
}

/** TIMESTAMP(2): seconds since the epoch, printed in UTC; 0 is the zero date. */
export function timestampText(seconds: number, us: number, fsp: number): string {
  if (seconds === 0 && us === 0) {
    return "0000-00-00 00:00:00" + (fsp > 0 ? "." + "0".repeat(fsp) : "");
  }
  const d = new Date(seconds * 1000);
  return `${pad(d.getUTCFullYear(), 4)}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${
    pad(d.getUTCHours())
  }:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}${fraction(us, fsp)}`;
}
