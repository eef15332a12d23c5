/**
 * The member list and the endpoints it gives (src/etcd/members.ts), and the raft term read
 * from a response header (messages.ts): decoded from bytes protobufjs writes with etcd's own
 * .proto file (shipped in the etcd3 package). No servers needed.
 */

import { createRequire } from "node:module";
import protobuf from "protobufjs";
import { assertEquals } from "../../testing/assert.ts";
import { decodeMemberList, type EtcdMember, memberEndpoints } from "../../src/etcd/members.ts";
import { headerTerm } from "../../src/etcd/messages.ts";

const require = createRequire(import.meta.url);
const protoFile = new URL("../proto/rpc.proto", `file://${require.resolve("etcd3")}`).pathname;
const root = new protobuf.Root().loadSync(protoFile, { keepCase: true });

function pbEncode(name: string, obj: Record<string, unknown>): Uint8Array {
  const T = root.lookupType(`etcdserverpb.${name}`);
  return T.encode(T.fromObject(obj)).finish();
}

const member = (id: string, url: string, isLearner = false): EtcdMember => ({
  id,
  name: `m${id}`,
  clientUrls: url ? [url] : [],
  isLearner,
});

Deno.test("MemberListResponse: IDs, names, client URLs, learners", () => {
  const bytes = pbEncode("MemberListResponse", {
    header: { cluster_id: "1", member_id: "2", revision: "3", raft_term: "4" },
    members: [
      {
        ID: "18446744073709551615",
        name: "a",
        peerURLs: ["http://p:1"],
        clientURLs: ["http://c:1", "http://c:2"],
      },
      { ID: "7", name: "", peerURLs: ["http://p:2"], clientURLs: [], isLearner: true },
    ],
  });
  assertEquals(decodeMemberList(bytes), [
    {
      id: "18446744073709551615",
      name: "a",
      clientUrls: ["http://c:1", "http://c:2"],
      isLearner: false,
    },
    { id: "7", name: "", clientUrls: [], isLearner: true },
  ]);
});

Deno.test("endpoints: voting members first, seeds after, learners never", () => {
  const members = [
    member("1", "http://a:2379"),
    member("2", "http://learner:2379", true),
    member("3", "http://c:2379/"),
    member("4", ""), // added, not started yet
  ];
  const seeds = ["http://old:2379", "http://a:2379", "http://learner:2379"];
  assertEquals(memberEndpoints(members, seeds), [
    "http://a:2379",
    "http://c:2379",
    "http://old:2379",
  ]);
  assertEquals(memberEndpoints([], seeds), seeds);
});

Deno.test("headerTerm: the raft term of any response's header", () => {
  const status = pbEncode("StatusResponse", {
    header: { cluster_id: "1", member_id: "2", revision: "300", raft_term: "17" },
    version: "3.4.23",
    leader: "9",
  });
  assertEquals(headerTerm(status), 17);
  assertEquals(headerTerm(pbEncode("PutResponse", { header: { revision: "5" } })), 0);
  assertEquals(headerTerm(new Uint8Array()), 0);
});
