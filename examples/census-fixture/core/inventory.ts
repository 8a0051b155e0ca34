// Stock levels; a real shop would keep them in the database.
const stock = new Map<string, number>();

export function inStock(isbn: string): boolean {
  return (stock.get(isbn) ?? 0) > 0;
}

export function restock(isbn: string, count: number): void {
  stock.set(isbn, (stock.get(isbn) ?? 0) + count); // TODO: refuse negative counts
}
