import { readFileSync, writeFileSync, rmSync } from 'node:fs';
import { getLlama } from 'node-llama-cpp';
import { readGguf, sourceFromBytes, writeGguf, kvString } from '../../src/gguf/index';
import { Tokenizer } from '../../src/text/tokenizer';
import { SUPPORTED_PRE_TOKENIZERS } from '../../src/text/pre-tokenizers';
process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
const llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, maxThreads: 1, logLevel: 'error' as never, progressLogs: false });
let seed = 777;
const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
const atoms = [' .',' ,',"'s","'S","'re","'LL","'d","'",'a','b','Z','Hello',' world','  ','   ','\t','\n','\r\n','\r','\u000b','\u0085','\u00a0','\u3000','\u2028','\ufeff','\u200d',
 '1','12','123','1234','12345','½','²','٣','.','...',',','!','?','"','`','$','+','<','=','>','^','~','|','/','\\','-','_','(',')','[',']','{','}','@','#','%','&','*',':',';',
 'é','e\u0301','É','Éé','ÀB','ß','ﬁ','Ω','K','µ','ǅ','ʰ','Ⅻ','𝔸','中文','漢字','日本語','ひらがな','カタカナ','한국어','ไทย','العربية','हिन्दी','ক্ষ','Ελληνικά','Русский','ПРИВЕТ',
 '😀','👍🏽','👨‍👩‍👧','🇫🇷','❤️','™','€','∑','→','\u0000','\u007f','\u0080',
 'don\'t','I\'M',' the',' The','THE','camelCase','HTTPServer','snake_case','x=1+2','http://a.b/c?d=e','                ','\n\n\n','\n \n','  \n  ','\t\t\n','！','，','。','‘','“'];
const strings: string[] = [];
for (let i = 0; i < 300; i++) { let s = ''; const n = 1 + Math.floor(rnd() * 8); for (let j = 0; j < n; j++) s += atoms[Math.floor(rnd() * atoms.length)]; strings.push(s); }
const base = process.argv[2] ?? 'llama-bpe';
const bytes = new Uint8Array(readFileSync(`tools/reference/llama.cpp/models/ggml-vocab-${base}.gguf`));
const file = await readGguf(sourceFromBytes(bytes));
for (const pre of (process.argv[3] ?? 'default,llama-bpe,dbrx,glm4,gpt-2,starcoder,falcon,qwen2,qwen35,deepseek-llm,deepseek-coder,deepseek-v3,gpt-4o,tekken,bailingmoe,command-r,megrez').split(',')) {
  const metadata = [...file.metadata.values()].filter((kv) => kv.key !== 'tokenizer.ggml.pre');
  metadata.push(kvString('tokenizer.ggml.pre', pre));
  const out = writeGguf({ version: 3, metadata, tensors: [] });
  const path = `/tmp/tk/vocab-${pre}.gguf`;
  writeFileSync(path, out);
  const tok = Tokenizer.fromGguf(await readGguf(sourceFromBytes(out)));
  const model = await llama.loadModel({ modelPath: path, vocabOnly: true });
  let pass = 0, fail = 0;
  for (const special of [false, true]) for (const s of strings) {
    const want = model.tokenize(s, special).map(Number);
    const got = tok.encode(s, { parseSpecial: special });
    if (JSON.stringify(got) === JSON.stringify(want)) pass++;
    else { fail++; if (fail <= 3) console.log('  FAIL', JSON.stringify(s), '\n   got ', got.map((t) => tok.tokenText(t)).join('|'), '\n   want', want.map((t) => tok.tokenText(t)).join('|')); }
    const wantText = model.detokenize(want as never, special);
    const gotText = tok.decode(want, { skipSpecial: !special, cleanSpaces: true });
    if (wantText !== gotText) { fail++; console.log('  DFAIL', JSON.stringify(gotText), JSON.stringify(wantText)); }
  }
  console.log(pre, `${pass}/${pass + fail}`); rmSync(path);
  await model.dispose();
}
