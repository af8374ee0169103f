/** PGlite needs no server: each test file opens its own in-memory database. */
export default async function globalSetup(): Promise<void> {}
