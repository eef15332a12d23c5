/**
 * etcd's member list (Cluster/MemberList), and the endpoints it gives: the client follows
 * the membership as etcd's Go client does with its auto-sync, so a member replaced at a new
 * URL needs no configuration change. Pure: bytes in, values out.
 */

import { LEN, ProtoReader, VARINT } from "./proto.ts";
import type { CallOptions } from "./types.ts";

const dec = new TextDecoder();

export interface EtcdMember {
  /** The member's ID, decimal uint64 as text. */
  id: string;
  name: string;
  clientUrls: string[];
  /** A learner serves no client requests but a few: never written to. */
  isLearner: boolean;
}

/** A transport that can ask its endpoint for the cluster's members. */
export interface MemberLister {
  memberList(c: CallOptions): Promise<EtcdMember[]>;
}

/** MemberListRequest: empty (etcd 3.5's `linearizable` left false: any member answers). */
export function encodeMemberList(): Uint8Array {
  return new Uint8Array();
}

/** MemberListResponse: its members (field 2). */
export function decodeMemberList(b: Uint8Array): EtcdMember[] {
  const r = new ProtoReader(b);
  const out: EtcdMember[] = [];
  while (r.next()) {
    if (r.wire !== LEN || r.field !== 2) {
      r.skip();
      continue;
    }
    const m = r.message();
    const member: EtcdMember = { id: "0", name: "", clientUrls: [], isLearner: false };
    while (m.next()) {
      if (m.wire === VARINT && m.field === 1) {
        member.id = BigInt.asUintN(64, BigInt(m.bigVarint())).toString();
      } else if (m.wire === LEN && m.field === 2) member.name = dec.decode(m.bytes());
      else if (m.wire === LEN && m.field === 4) member.clientUrls.push(dec.decode(m.bytes()));
      else if (m.wire === VARINT && m.field === 5) member.isLearner = m.varint() !== 0;
      else m.skip();
    }
    out.push(member);
  }
  return out;
}

/** An endpoint as written (`http://h:p`), for comparing URLs from flags and from etcd. */
export function normalizeEndpoint(url: string): string {
  return url.trim().replace(/\/+$/, "");
}

/**
 * The endpoints to use: every voting member's client URLs, in the list's order, then the
 * seeds (`--etcd-endpoints`) the list does not name, last, for when every member is
 * unreachable. A learner's URLs are left out even when they are seeds. Members that have not
 * started yet have no client URL.
 */
export function memberEndpoints(members: EtcdMember[], seeds: string[]): string[] {
  const learners = new Set(
    members.filter((m) => m.isLearner).flatMap((m) => m.clientUrls.map(normalizeEndpoint)),
  );
  const out: string[] = [];
  const add = (u: string) => {
    const n = normalizeEndpoint(u);
    if (n && !learners.has(n) && !out.includes(n)) out.push(n);
  };
  for (const m of members) if (!m.isLearner) m.clientUrls.forEach(add);
  seeds.forEach(add);
  return out;
}
