/** DECIMAL and FLOAT/DOUBLE values as the server prints them. Pure. */
import { Cursor } from "./cursor.ts";

/** Bytes for a group of 0-8 leftover decimal digits (9 digits take 4 bytes). */
const DIG2BYTES = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

const pad9 = (n: number) => String(n).padStart(9, "0");

/**
 * MySQL's packed DECIMAL (decimal2bin): integer and fraction digits in groups of 9 per
 * 4 bytes, big-endian, sign in the top bit (inverted), negatives stored complemented.
 */
export function decimal(c: Cursor, precision: number, scale: number): string {
  const intg = precision - scale;
  const intg0 = Math.floor(intg / 9), intg0x = intg % 9;
  const frac0 = Math.floor(scale / 9), frac0x = scale % 9;
  const size = intg0 * 4 + DIG2BYTES[intg0x] + frac0 * 4 + DIG2BYTES[frac0x];
  const b = c.take(size).slice();
  const neg = (b[0] & 0x80) === 0;
  b[0] ^= 0x80;
  if (neg) { for (let i = 0; i < b.length; i++) b[i] ^= 0xff; }
  const r = new Cursor(b, 0);
  let intPart = "";
  if (DIG2BYTES[intg0x]) intPart += String(r.be(DIG2BYTES[intg0x]));
  for (let i = 0; i < intg0; i++) intPart += pad9(r.be(4));
  intPart = intPart.replace(/^0+/, "") || "0";
  let frac = "";
  for (let i = 0; i < frac0; i++) frac += pad9(r.be(4));
  if (DIG2BYTES[frac0x]) frac += String(r.be(DIG2BYTES[frac0x])).padStart(frac0x, "0");
  return (neg ? "-" : "") + intPart + (scale > 0 ? "." + frac : "");
}

/**
 * FLOAT/DOUBLE as the server prints them (my_gcvt): FLOAT to 6 significant digits, DOUBLE
 * to the shortest round trip; fixed notation unless the decimal point is more than 15
 * places right or 14 places left of the first digit (measured against MariaDB 10.11).
 */
export function floatText(x: number, single: boolean): string {
  if (!Number.isFinite(x)) return String(x);
  if (x === 0) return Object.is(x, -0) ? "-0" : "0";
  const [mant, exp] = (single ? x.toExponential(5) : x.toExponential()).split("e");
  const neg = mant.startsWith("-");
  const digits = mant.replace(/^-/, "").replace(".", "").replace(/0+$/, "") || "0";
  const e = Number(exp);
  const decpt = e + 1;
  const sign = neg ? "-" : "";
  if (decpt > 15 || decpt < -14) {
    return `${sign}${digits[0]}${digits.length > 1 ? "." + digits.slice(1) : ""}e${e}`;
  }
  if (decpt <= 0) return `${sign}0.${"0".repeat(-decpt)}${digits}`;
  if (decpt >= digits.length) return sign + digits + "0".repeat(decpt - digits.length);
  return `${sign}${digits.slice(0, decpt)}.${digits.slice(decpt)}`;
}
