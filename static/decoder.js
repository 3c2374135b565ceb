// framehub decoder worker: turns a frame's payload into an ImageBitmap off
// the main thread, with FH.decodeBitmap: JPEG through the browser's own
// decoders (ImageDecoder or createImageBitmap); raw pixels are converted to
// RGBA first. Every message is re-checked against the page's own guard
// before anything is allocated for it (FH.checkDecodable), whoever sent it.
// Every message gets one answer, {id, bitmap, by} or {id, error}.
'use strict';
importScripts('/static/protocol.js');

self.onmessage = async (e) => {
  const m = e.data;
  const id = m !== null && typeof m === 'object' ? m.id : undefined;
  try {
    FH.checkDecodable(m);
    const { bitmap, by } = await FH.decodeBitmap(m);
    if (m.delayMs > 0) {
      // Test hook: a deliberately slow decoder.
      await new Promise((r) => setTimeout(r, m.delayMs));
    }
    self.postMessage({ id, bitmap, by }, [bitmap]);
  } catch (err) {
    self.postMessage({ id, error: err instanceof FH.FrameError ? err.message : String(err) });
  }
};
