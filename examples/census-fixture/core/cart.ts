// The cart: items, quantities, totals.
import { priceOf } from './pricing.js';

export interface Line {
  isbn: string;
  quantity: number;
}

export function addToCart(cart: Line[], isbn: string): Line[] {
  const found = cart.find((l) => l.isbn === isbn);
  if (found) return cart.map((l) => (l === found ? { ...l, quantity: l.quantity + 1 } : l));
  return [...cart, { isbn, quantity: 1 }];
}

export function total(cart: Line[]): number {
  // TODO: apply the discount codes once pricing supports them
  return cart.reduce((sum, l) => sum + priceOf(l.isbn) * l.quantity, 0);
}

export function checkout(cart: Line[]): string {
  const note = "// TODO inside a string is not a comment";
  return `${note}: ${total(cart)}`;
}
