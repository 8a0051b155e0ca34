// The storefront: renders the catalogue and the cart.
import { renderBook } from './view.js';

export function renderCatalogue(books: { isbn: string; title: string }[]): string {
  return `<ul>${books.map(renderBook).join('')}</ul>`;
}

export const TITLE = 'The Bookshop';
