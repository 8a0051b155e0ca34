// HTTP routes of the bookshop.
import { addToCart, checkout } from '../core/cart.js';
import { requireUser } from './auth.js';

export const routes = [
  { method: 'POST', path: '/cart', handler: requireUser(addToCart) },
  { method: 'POST', path: '/checkout', handler: requireUser(checkout) },
];

// TODO: rate-limit /checkout per user
export function notFound(req) {
  return { status: 404, body: `no route for ${req.method} ${req.path}` };
}
