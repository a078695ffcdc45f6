// The `prompt` a PNG carries (what SaveImage writes: tEXt chunks "prompt" and "workflow"; iTXt read too).

const SIGNATURE = [137, 80, 78, 71, 13, 10, 26, 10];

export async function pngText(buffer) {
  const bytes = new Uint8Array(buffer);
  if (!SIGNATURE.every((b, i) => bytes[i] === b)) throw new Error("not a PNG file");
  const view = new DataView(buffer);
  const latin1 = new TextDecoder("latin1");
  const utf8 = new TextDecoder("utf-8");
  const found = {};
  let at = 8;
  while (at + 8 <= bytes.length) {
    const length = view.getUint32(at);
    const type = latin1.decode(bytes.subarray(at + 4, at + 8));
    const data = bytes.subarray(at + 8, at + 8 + length);
    if (type === "tEXt" || type === "iTXt") {
      const zero = data.indexOf(0);
      const key = latin1.decode(data.subarray(0, zero));
      if (type === "tEXt") {
        found[key] = latin1.decode(data.subarray(zero + 1));
      } else if (data[zero + 1] === 0) { // iTXt, uncompressed: flag, method, language\0, translated\0, text
        let p = zero + 3;
        p = data.indexOf(0, p) + 1;
        p = data.indexOf(0, p) + 1;
        found[key] = utf8.decode(data.subarray(p));
      }
    }
    if (type === "IEND") break;
    at += 12 + length;
  }
  return found;
}

export async function promptFromPng(buffer) {
  const text = await pngText(buffer);
  if (!text.prompt) throw new Error("this PNG carries no prompt (SaveImage writes one unless the farm runs with --disable-metadata)");
  return JSON.parse(text.prompt);
}
