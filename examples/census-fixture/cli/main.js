#!/usr/bin/env node
// The shop's admin command line.
import { restock } from '../core/inventory.js';

const [command, isbn, count] = process.argv.slice(2);
if (command === 'restock') {
  restock(isbn, Number(count));
  console.log(`restocked ${isbn}`);
} else {
  console.error('usage: shop restock ISBN COUNT');
  process.exit(2);
}
