/**
 * Dedicated module worker entry: everything heavy (GGUF parsing, GPU work)
 * runs here, exposed to the page through comlink.
 */
import * as Comlink from 'comlink';
import { workerApi } from './api';

Comlink.expose(workerApi);
