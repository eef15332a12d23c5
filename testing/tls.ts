/** A throwaway CA and a server certificate for 127.0.0.1/localhost, made with openssl. */
import { run } from "./process.ts";
import { serverDir } from "./server_dirs.ts";

export interface TestCerts {
  dir: string;
  caFile: string;
  ca: string;
  cert: string;
  key: string;
  close(): Promise<void>;
}

export async function makeCerts(): Promise<TestCerts> {
  // Readable by every server user (the keys stay the owner's: servers get copies of them).
  const dir = await serverDir("tls");
  await Deno.chmod(dir, 0o755);
  const o = (args: string[]) => run("openssl", { args, cwd: dir });
  await o([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=sync test CA",
    "-keyout",
    "ca.key",
    "-out",
    "ca.pem",
  ]);
  await o([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    "server.key",
    "-out",
    "server.csr",
  ]);
  await Deno.writeTextFile(
    `${dir}/ext.cnf`,
    "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
  );
  await o([
    "x509",
    "-req",
    "-in",
    "server.csr",
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    "ext.cnf",
    "-out",
    "server.pem",
  ]);
  const read = (f: string) => Deno.readTextFile(`${dir}/${f}`);
  return {
    dir,
    caFile: `${dir}/ca.pem`,
    ca: await read("ca.pem"),
    cert: await read("server.pem"),
    key: await read("server.key"),
    close: () => Deno.remove(dir, { recursive: true }).catch(() => {}),
  };
}

/**
 * A client certificate (CN `cn`, extendedKeyUsage clientAuth) signed by the CA of `certs`,
 * written next to it as `<name>.pem` and `<name>.key`.
 */
export async function makeClientCert(
  certs: TestCerts,
  name = "client",
  cn = "sync",
): Promise<{ certFile: string; keyFile: string; cert: string; key: string }> {
  const o = (args: string[]) => run("openssl", { args, cwd: certs.dir });
  await o([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    `/CN=${cn}`,
    "-keyout",
    `${name}.key`,
    "-out",
    `${name}.csr`,
  ]);
  await Deno.writeTextFile(
    `${certs.dir}/${name}.cnf`,
    "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth\n",
  );
  await o([
    "x509",
    "-req",
    "-in",
    `${name}.csr`,
    "-CA",
    "ca.pem",
    "-CAkey",
    "ca.key",
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    `${name}.cnf`,
    "-out",
    `${name}.pem`,
  ]);
  const certFile = `${certs.dir}/${name}.pem`;
  const keyFile = `${certs.dir}/${name}.key`;
  return {
    certFile,
    keyFile,
    cert: await Deno.readTextFile(certFile),
    key: await Deno.readTextFile(keyFile),
  };
}
