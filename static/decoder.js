// framehub decoder worker: turns a frame's payload into a picture to draw
// off the main thread, with FH.decodePicture: JPEG through the browser's
// own decoders (ImageDecoder or createImageBitmap); raw pixels are
// converted to RGBA first. Every message is re-checked against the page's
// own guard before anything is allocated for it (FH.checkDecodable),
// whoever sent it. Every message gets one answer, {id, image, width,
// height, by} (image transferred: an ImageBitmap or a VideoFrame) or {id,
// error}.
'use strict';
importScripts('/static/protocol.js');

self.onmessage = async (e) => {
  const m = e.data;
  const id = m !== null && typeof m === 'object' ? m.id : undefined;
  let pic = null;
  try {
    FH.checkDecodable(m);
    pic = await FH.decodePicture(m);
    if (m.delayMs > 0) {
      // Test hook: a deliberately slow decoder.
      await new Promise((r) => setTimeout(r, m.delayMs));
    }
    self.postMessage({ id, image: pic.image, width: pic.width, height: pic.height, by: pic.by }, [pic.image]);
  } catch (err) {
    if (pic) pic.image.close(); // not sent: the page will not close it
    self.postMessage({ id, error: err instanceof FH.FrameError ? err.message : String(err) });
  }
};
