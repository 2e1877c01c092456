/**
 * Learns the default model's BPE vocabulary on the training text (with the
 * project's learner, src/tiny/bpe.ts) and encodes both slices with the
 * project's runtime tokenizer, documents separated by <|endoftext|>.
 *
 * usage: npx tsx scripts/train/tokenize.ts [workDir] [merges]
 * reads  workDir/train.txt, workDir/heldout.txt (extract_corpus.py)
 * writes workDir/vocab.json, workDir/train.u16, workDir/heldout.u16 (little-endian token ids)
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { learnBpe } from '../../src/tiny/bpe';
import { END_OF_TEXT, type VocabFile, tokenizerOf } from './vocab';

const workDir = process.argv[2] ?? join(import.meta.dirname, 'work');
const merges = Number(process.argv[3] ?? 2813);

const train = readFileSync(join(workDir, 'train.txt'), 'utf8');
let t0 = Date.now();
const learned = learnBpe(train.replaceAll(END_OF_TEXT, '\n\n'), merges);
const vocab: VocabFile = { tokens: [...learned.tokens, END_OF_TEXT], merges: learned.merges };
writeFileSync(join(workDir, 'vocab.json'), JSON.stringify(vocab));
console.log(`${vocab.merges.length} merges, ${vocab.tokens.length} tokens, learned in ${((Date.now() - t0) / 1000).toFixed(0)} s`);

const tokenizer = await tokenizerOf(vocab);
const eot = tokenizer.tokenId(END_OF_TEXT)!;
for (const slice of ['train', 'heldout']) {
  t0 = Date.now();
  const docs = readFileSync(join(workDir, `${slice}.txt`), 'utf8').split(END_OF_TEXT);
  const ids: number[] = [];
  for (const doc of docs) {
    ids.push(eot, ...tokenizer.encode(doc));
  }
  writeFileSync(join(workDir, `${slice}.u16`), new Uint8Array(Uint16Array.from(ids).buffer));
  const chars = docs.reduce((n, d) => n + d.length, 0);
  console.log(`${slice}: ${docs.length} documents, ${ids.length} tokens (${(chars / ids.length).toFixed(2)} chars/token), ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
