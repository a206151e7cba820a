// The original demo's background removal, as it ran in the browser: one pass over
// RGBA pixels, making a pixel transparent when G > 90, R < 90 and B < 90 (the same
// rule and loop shape, re-written here). Reads raw RGBA frames given on the command
// line as "path:width:height", prints one JSON line per frame size: median ms/frame.
'use strict';
const fs = require('fs');

function isCloseToGreen(color) {
  const [red, green, blue] = color;
  return green > 90 && red < 90 && blue < 90;
}

function alphaPass(data) {
  for (let i = 0; i < data.length; i += 4) {
    if (isCloseToGreen([data[i], data[i + 1], data[i + 2]])) {
      data[i + 3] = 0;
    }
  }
}

const repeats = Number(process.env.REPEATS || 50);
for (const arg of process.argv.slice(2)) {
  const [path, width, height] = arg.split(':');
  const original = new Uint8ClampedArray(fs.readFileSync(path));
  const data = new Uint8ClampedArray(original.length);
  const times = [];
  for (let r = 0; r < repeats + 5; r++) {
    data.set(original); // a fresh frame each time, as from the video element
    const t0 = process.hrtime.bigint();
    alphaPass(data);
    const t1 = process.hrtime.bigint();
    if (r >= 5) times.push(Number(t1 - t0) / 1e6); // the first runs warm up the JIT
  }
  times.sort((a, b) => a - b);
  console.log(JSON.stringify({ size: `${width}x${height}`, ms: times[Math.floor(times.length / 2)] }));
}
