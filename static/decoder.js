// framehub decoder worker: turns a frame's payload into an ImageBitmap off
// the main thread. JPEG goes through createImageBitmap (the browser's own
// decoder); raw pixels are converted to RGBA first.
'use strict';
importScripts('/static/protocol.js');

self.onmessage = async (e) => {
  const m = e.data;
  try {
    const bitmap = await createImageBitmap(FH.decodeSource(m), FH.resizeOptions(m));
    if (m.delayMs > 0) {
      // Test hook: a deliberately slow decoder.
      await new Promise((r) => setTimeout(r, m.delayMs));
    }
    self.postMessage({ id: m.id, bitmap }, [bitmap]);
  } catch (err) {
    self.postMessage({ id: m.id, error: String(err) });
  }
};
