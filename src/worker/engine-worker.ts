/**
 * Dedicated module worker entry: everything heavy (GGUF parsing, GPU work,
 * the model store) runs here, exposed to the page through comlink.
 */
import * as Comlink from 'comlink';
import { EngineService } from '../engine/service';
import { installErrorTransfer } from './transfer';
import { workerApi } from './api';
import { browserPlatform } from './browser-platform';

installErrorTransfer();
Comlink.expose({ ...workerApi, service: new EngineService(browserPlatform) });
