// HTML pieces of the storefront.
export function renderBook(b: { isbn: string; title: string }): string {
  // XXX: escape the title before it reaches the page
  return `<li data-isbn="${b.isbn}">${b.title}</li>`;
}

export function placeholder(): string {
  return '<p>TODO: cover images</p>'; /* shown while the covers load */
}
