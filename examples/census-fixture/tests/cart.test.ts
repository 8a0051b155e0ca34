// Tests of the cart.
import { addToCart, total } from '../core/cart.js';

export function testAddTwice(): void {
  const cart = addToCart(addToCart([], '9780131103627'), '9780131103627');
  if (cart[0]?.quantity !== 2) throw new Error('expected a quantity of 2');
}

export function testTotal(): void {
  if (total([{ isbn: '9780262033848', quantity: 2 }]) !== 19600) throw new Error('expected 19600');
}
