/**
 * An HTTP proxy between Parley and a real S3 server that breaks on cue, for storage fault tests. Requests
 * pass through unchanged (headers included, so S3 signatures still verify) until a fault strikes: at the
 * first UploadPart request for a part number above `afterPart`, that is once the upload is past its first
 * `afterPart` parts, whatever the order the parts go in. Then the proxy
 *  - refuses: answers part uploads (or every request, the abort included) with an S3 error status, or
 *  - vanishes: cuts every open connection, in-flight part uploads included, and stops listening,
 * until heal(). It keeps its port, so Parley's S3_ENDPOINT is valid again once healed.
 */
import http from "node:http";
import type net from "node:net";
import type { AddressInfo } from "node:net";

export type Fault = { kind: "refuse"; status: 500 | 503; requests: "parts" | "all" } | { kind: "vanish" };

export interface FaultProxy {
  url: string;
  /** Requests refused or cut so far. */
  readonly faulted: number;
  /** Arms `fault` for the first part upload past part number `afterPart`. */
  failAfterPart(afterPart: number, fault: Fault): void;
  /** Passes everything through again (listening again after a vanish). */
  heal(): Promise<void>;
  dispose(): Promise<void>;
}

const S3_ERRORS = {
  500: ["InternalError", "We encountered an internal error. Please try again."],
  503: ["ServiceUnavailable", "Please reduce your request rate."],
} as const;

export async function createFaultProxy(target: string): Promise<FaultProxy> {
  const upstream = new URL(target);
  const sockets = new Set<net.Socket>();
  const outgoing = new Set<http.ClientRequest>();
  let armed: { afterPart: number; fault: Fault } | undefined;
  let struck = false;
  let faulted = 0;

  function refuse(req: http.IncomingMessage, res: http.ServerResponse, status: 500 | 503): void {
    faulted++;
    const [code, message] = S3_ERRORS[status];
    const body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${message}</Message></Error>`;
    // Read the request to its end first: a client still sending would see a reset instead of the answer.
    req.resume();
    req.once("end", () => res.writeHead(status, { "content-type": "application/xml", "content-length": Buffer.byteLength(body) }).end(body));
  }

  function vanish(): void {
    faulted++;
    server.close();
    for (const socket of sockets) socket.destroy();
    for (const request of outgoing) request.destroy();
  }

  function forward(req: http.IncomingMessage, res: http.ServerResponse): void {
    const request = http.request({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: req.headers }, (answer) => {
      res.writeHead(answer.statusCode ?? 502, answer.headers);
      answer.pipe(res);
    });
    outgoing.add(request);
    request.once("close", () => outgoing.delete(request));
    request.once("error", () => res.destroy());
    req.pipe(request);
  }

  const server = http.createServer((req, res) => {
    const query = new URL(req.url ?? "/", "http://proxy").searchParams;
    const part = req.method === "PUT" && query.has("uploadId") ? Number(query.get("partNumber")) : undefined;
    if (armed && part !== undefined && part > armed.afterPart) struck = true;
    const fault = struck ? armed?.fault : undefined;
    if (fault?.kind === "vanish") return vanish();
    if (fault?.kind === "refuse" && (fault.requests === "all" || part !== undefined)) return refuse(req, res, fault.status);
    forward(req, res);
  });
  server.on("connection", (socket) => {
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    get faulted() {
      return faulted;
    },
    failAfterPart(afterPart, fault) {
      armed = { afterPart, fault };
      struck = false;
    },
    async heal() {
      armed = undefined;
      struck = false;
      if (!server.listening) await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
    },
    async dispose() {
      armed = undefined;
      for (const socket of sockets) socket.destroy();
      if (server.listening) await new Promise((resolve) => server.close(resolve));
    },
  };
}
