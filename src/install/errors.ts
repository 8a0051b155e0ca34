/**
 * The one error type of the installers: something in the user's files (or the call) that stops an
 * install before anything is written. The message names the file and says how to fix it.
 */
export class InstallError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message.startsWith('install: ') ? message : `install: ${message}`, options);
    this.name = 'InstallError';
  }
}
