/**
 * A table of records, for the admin pages and the usage summary. On a wide screen it is a table. On a narrow
 * one (styles.css, at most 760 px) each row becomes a card: the first cell is its title, and every other cell
 * shows its column's name beside its value (data-label, drawn by CSS), so a phone reads every column without
 * scrolling sideways, and no row is cut off at the edge of the screen.
 */
import type { ComponentChildren } from "preact";

export interface Column<T> {
  /** The heading, and the cell's label on a card. */
  label: string;
  cell(row: T): ComponentChildren;
  /** A column of buttons: its heading is for screen readers only, and its cells carry no label on a card. */
  actions?: boolean;
  /** Right-aligned in the table (numbers). */
  numeric?: boolean;
  /** The cell's data-col, by which tests find it. */
  name?: string;
}

export interface DataTableProps<T> {
  testId: string;
  caption?: string;
  columns: Column<T>[];
  rows: T[];
  rowKey(row: T): string;
  /** data-* attributes of a row. */
  rowData?(row: T): Record<`data-${string}`, string>;
}

export function DataTable<T>({ testId, caption, columns, rows, rowKey, rowData }: DataTableProps<T>) {
  return (
    <div class="table-box">
      <table class="table" data-testid={testId}>
        {caption && <caption>{caption}</caption>}
        <thead>
          <tr>
            {columns.map((column) => (
              <th scope="col" key={column.label} class={column.numeric ? "num" : undefined}>
                {column.actions ? <span class="visually-hidden">{column.label}</span> : column.label}
              </th>
            ))}
          </tr>
        </thead>
        <tbody>
          {rows.map((row) => (
            <tr key={rowKey(row)} {...rowData?.(row)}>
              {columns.map((column, index) =>
                index === 0 ? (
                  <th scope="row" key={column.label} data-col={column.name}>
                    {column.cell(row)}
                  </th>
                ) : (
                  <td key={column.label} class={column.numeric ? "num" : undefined} data-label={column.actions ? undefined : column.label} data-col={column.name}>
                    {/* One box for the value: a card lays out the label and this side by side. */}
                    <div class="cell">{column.cell(row)}</div>
                  </td>
                ),
              )}
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}
