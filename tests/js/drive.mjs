// Drives mmdemo's API with the official Gradio JavaScript client; prints one JSON line per call.
// usage: node drive.mjs URL IMAGE AUDIO
import fs from "node:fs";
import { Client, handle_file } from "@gradio/client";

const [url, imagePath, audioPath] = process.argv.slice(2);
const app = await Client.connect(url);
// Blobs, as a browser sends them: no file name, only a MIME type.
const image = new Blob([fs.readFileSync(imagePath)], { type: "image/png" });
const audio = new Blob([fs.readFileSync(audioPath)], { type: "audio/wav" });
const broken = new Blob([Buffer.from("not an image at all")], { type: "image/png" });

async function call(name, endpoint, data) {
  try {
    const result = await app.predict(endpoint, data);
    console.log(JSON.stringify({ name, ok: true, data: result.data }));
  } catch (error) {
    console.log(JSON.stringify({ name, ok: false, message: String(error?.message ?? JSON.stringify(error)) }));
  }
}

const message = (text, files = []) => ({ text, files });
await call("schema", "/chat", { message: message("Hello"), max_tokens: 4 });
await call("image", "/chat", { message: message("What is it?", [handle_file(image)]), max_tokens: 4 });
await call("audio", "/chat", { message: message("", [handle_file(audio)]), max_tokens: 4 });
await call("bad file", "/chat", { message: message("What is it?", [handle_file(broken)]), max_tokens: 4 });
await call("caption", "/task", { message: message("", [handle_file(image)]), task_key: "caption_short", prompt: "",
  labels: "", target: "", max_tokens: 4, temperature: 0 });
await call("positional", "/chat", [message("Hi")]);  // every optional input left out: their defaults
await call("classify", "/task", { message: message("I loved it."), task_key: "classify", prompt: "",
  labels: "positive, negative", target: "", max_tokens: 4, temperature: 0 });

// Cancel a long answer after its second update: the stream must end without an error.
const job = app.submit("/chat", { message: message("Tell me a long story."), max_tokens: 3000 });
let updates = 0;
let failure = null;
try {
  for await (const event of job) {
    if (event.type === "data" && ++updates === 2) await job.cancel();
    if (event.type === "status" && event.stage === "error") failure = event.message ?? "error";
    if (event.type === "status" && ["complete", "error"].includes(event.stage)) break;
  }
} catch (error) {
  failure = String(error?.message ?? error);
}
console.log(JSON.stringify({ name: "cancel", ok: failure === null, updates, message: failure }));

// Over the per-session limit (2): two long answers in flight, then a third request from the same client.
const long = [1, 2].map(() => app.submit("/chat", { message: message("Tell me a long story."), max_tokens: 3000 }));
await new Promise((resolve) => setTimeout(resolve, 1500));
await call("limit", "/chat", { message: message("Hi"), max_tokens: 4 });
for (const running of long) await running.cancel();
process.exit(0);
