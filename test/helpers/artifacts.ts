/**
 * Artifact helpers shared by the disk and S3 suites: conversations with an assistant answer, the GraphQL
 * mutations, and the two file routes spoken to with fetch as a client would.
 */
import type { TestApp, TestUser } from "./server";

export const ARTIFACT_FIELDS = `id version kind title language mimeType content sizeBytes sha256 status downloadPath uploadPath
  parent { id } message { id } conversation { id } createdBy { id }`;

export interface Transfer {
  status: number;
  headers: Headers;
  bytes: Buffer;
  text: string;
  json: any;
}

async function transfer(response: Response): Promise<Transfer> {
  const bytes = Buffer.from(await response.arrayBuffer());
  const text = bytes.toString("utf8");
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: response.status, headers: response.headers, bytes, text, json };
}

export function artifactApi(app: TestApp) {
  const CREATE = `mutation($input: CreateArtifactInput!) { createArtifact(input: $input) { ${ARTIFACT_FIELDS} } }`;
  const EDIT = `mutation($id: UUID!, $input: EditArtifactInput!) { editArtifact(id: $id, input: $input) { ${ARTIFACT_FIELDS} } }`;
  const auth = (token: string | undefined): Record<string, string> => (token ? { authorization: `Bearer ${token}` } : {});

  const api = {
    CREATE,
    async newConversation(owner: TestUser): Promise<string> {
      return (await app.ok(`mutation { createConversation(input: { title: "artifacts" }) { id } }`, {}, owner.token)).createConversation.id;
    },
    async say(writer: TestUser, conversationId: string, role: string, content: string): Promise<string> {
      const input = { conversationId, role, content };
      return (await app.ok(`mutation($input: AddMessageInput!) { addMessage(input: $input) { id } }`, { input }, writer.token)).addMessage.id;
    },
    /** A conversation of `owner`'s with a question and the service's answer. */
    async conversation(owner: TestUser, service: TestUser) {
      const conversationId = await api.newConversation(owner);
      const questionId = await api.say(owner, conversationId, "USER", "make me something");
      const assistantId = await api.say(service, conversationId, "ASSISTANT", "here it is");
      return { conversationId, questionId, assistantId };
    },
    async create(writer: TestUser, input: Record<string, unknown>): Promise<any> {
      return (await app.ok(CREATE, { input }, writer.token)).createArtifact;
    },
    async edit(writer: TestUser, id: string, input: Record<string, unknown>): Promise<any> {
      return (await app.ok(EDIT, { id, input }, writer.token)).editArtifact;
    },
    async get(id: string, reader: TestUser): Promise<any> {
      return (await app.ok(`query($id: UUID!) { artifact(id: $id) { ${ARTIFACT_FIELDS} } }`, { id }, reader.token)).artifact;
    },
    async removeConversation(owner: TestUser, id: string): Promise<void> {
      await app.ok(`mutation($id: UUID!) { deleteConversation(id: $id) }`, { id }, owner.token);
    },
    /** PUT /artifacts/:id/content; `chunked` sends no Content-Length, so only the bytes themselves can be counted. */
    async upload(id: string, token: string | undefined, body: Buffer, contentType?: string, options: { chunked?: boolean } = {}): Promise<Transfer> {
      const headers = { ...auth(token), ...(contentType ? { "content-type": contentType } : {}) };
      const stream = new ReadableStream<Uint8Array>({
        start(controller) {
          for (let at = 0; at < body.length; at += 16 * 1024) controller.enqueue(body.subarray(at, at + 16 * 1024));
          controller.close();
        },
      });
      const init = options.chunked
        ? ({ method: "PUT", headers, body: stream, duplex: "half" } as RequestInit)
        : { method: "PUT", headers, body };
      return transfer(await fetch(`${app.url}/artifacts/${id}/content`, init));
    },
    async download(id: string, token: string | undefined, options: { range?: string; method?: string } = {}): Promise<Transfer> {
      const headers = { ...auth(token), ...(options.range ? { range: options.range } : {}) };
      return transfer(await fetch(`${app.url}/artifacts/${id}/download`, { method: options.method ?? "GET", headers }));
    },
  };
  return api;
}

export type ArtifactApi = ReturnType<typeof artifactApi>;
