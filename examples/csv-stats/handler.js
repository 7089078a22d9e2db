'use strict';

// Aggregate a CSV upload: the row count, and sum and mean of each numeric column.
module.exports = async (event, context) => {
  const text = Buffer.isBuffer(event.body) ? event.body.toString('utf8') : String(event.body || '');
  const lines = text.split(/\r?\n/).filter((line) => line.trim() !== '');
  if (lines.length < 2) {
    return context.status(400).succeed({ error: 'send a CSV file with a header row and at least one data row' });
  }
  const header = lines[0].split(',').map((h) => h.trim());
  const sums = header.map(() => 0);
  const numeric = header.map(() => true);
  for (const [i, line] of lines.slice(1).entries()) {
    const cells = line.split(',');
    if (cells.length !== header.length) {
      return context.status(400).succeed({ error: `row ${i + 2} has ${cells.length} cells, the header has ${header.length}` });
    }
    cells.forEach((cell, c) => {
      const n = Number(cell.trim());
      if (cell.trim() === '' || Number.isNaN(n)) numeric[c] = false;
      else sums[c] += n;
    });
  }
  const rows = lines.length - 1;
  const columns = {};
  header.forEach((name, c) => {
    if (numeric[c]) columns[name] = { sum: sums[c], mean: sums[c] / rows };
  });
  return { rows, columns };
};
