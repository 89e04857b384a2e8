import type { InboundMessage } from "../jobs/event";

export const PLACEHOLDER_REPLY =
  "Thanks for your message! Someone from our team will get back to you shortly.";

export interface ReplyDecision {
  text: string;
}

/**
 * Decides the reply to one inbound message, or none. This is the extension point for an AI
 * reply: it may be async, and whatever it returns is cut to Meta's byte limit before sending.
 * Today every text, attachment and postback gets the placeholder acknowledgement.
 */
export async function decideReply(message: InboundMessage): Promise<ReplyDecision | null> {
  switch (message.kind) {
    case "text":
    case "attachment":
    case "postback":
      return { text: PLACEHOLDER_REPLY };
  }
}
