/**
 * Dedicated module worker entry: everything heavy (GGUF parsing, GPU work,
 * the model store) runs here, exposed to the page through comlink.
 */
import * as Comlink from 'comlink';
import { installErrorTransfer } from '../api/worker-transfer';
import { workerApi } from './api';
import { browserPlatform } from './browser-platform';
import { LocalCore } from './local-core';

installErrorTransfer();
Comlink.expose({ ...workerApi, core: new LocalCore(browserPlatform) });
