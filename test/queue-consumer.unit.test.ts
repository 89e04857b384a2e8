import { env } from "cloudflare:test";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { importSealKey, unseal } from "../src/seal";
import { TEST_BINDINGS } from "./support/bindings";
import { textMessage } from "./support/deliveries";
import { installGraphStandIn } from "./support/graph-stand-in";
import { JOBS_QUEUE, jobFor, runQueue } from "./support/jobs";

let graph: ReturnType<typeof installGraphStandIn>;
beforeEach(() => {
  graph = installGraphStandIn();
});
afterEach(() => graph.restore());

describe("job consumer, success path", () => {
  it("stores the message sealed, replies once with the right request and acknowledges", async () => {
    const content = textMessage({
      mid: "mid-hello",
      text: "I need an appointment",
      sender: "user-42",
    });
    const job = jobFor(content);

    const [decision] = await runQueue(JOBS_QUEUE, [{ body: job }]);

    expect(decision).toMatchObject({ acked: true, retried: false });
    expect(graph.calls).toEqual([
      {
        url: "https://graph.test/v26.0/me/messages",
        method: "POST",
        authorization: `Bearer ${TEST_BINDINGS.INSTAGRAM_ACCESS_TOKEN}`,
        body: { recipient: { id: "user-42" }, message: { text: expect.any(String) } },
      },
    ]);

    const message = await env.DB.prepare("SELECT * FROM messages WHERE provider_message_id = ?")
      .bind("mid-hello")
      .first<{ text_sealed: string; kind: string }>();
    expect(message?.kind).toBe("text");
    expect(message?.text_sealed).not.toContain("appointment");
    const key = await importSealKey(TEST_BINDINGS.DATA_ENCRYPTION_KEY);
    expect(await unseal(key, message?.text_sealed ?? "", "mid-hello")).toBe(
      "I need an appointment",
    );

    const reply = await env.DB.prepare("SELECT provider_message_id FROM replies WHERE event_id = ?")
      .bind("mid-hello")
      .first();
    expect(reply).toEqual({ provider_message_id: "graph-mid-1" });
  });
});
