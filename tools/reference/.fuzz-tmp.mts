import { readFileSync, readdirSync, existsSync } from 'node:fs';
import { getLlama } from 'node-llama-cpp';
import { readGguf, sourceFromBytes } from '../../src/gguf/index';
import { Tokenizer } from '../../src/text/tokenizer';
process.env.NODE_LLAMA_CPP_SKIP_DOWNLOAD = 'true';
const llama = await getLlama({ gpu: false, build: 'never', skipDownload: true, maxThreads: 1, logLevel: 'error' as never, progressLogs: false });
const dir = 'tools/reference/llama.cpp/models/';
// deterministic random strings from a pool of interesting characters
let seed = 12345;
const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x7fffffff; };
const atoms = [" ."," ,"," ?"," ' "," 's"," 'm"," 're"," 've"," 't"," 'll","' '","  '  ",'a','b','Z','Hello',' world','  ','   ','\t','\n','\r\n','\r','\u000b','\f','\u0085','\u00a0','\u3000','\u2028','\u2029','\ufeff','\u200b','\u200d',
 '1','12','123','1234','½','²','٣','.','...',',','!','?',"'s","'S","'re","'LL","'d","'",'"','`','$','+','<','=','>','^','~','|','/','\\','-','_','(',')','[',']','{','}','@','#','%','&','*',':',';',
 'é','e\u0301','É','ß','ﬁ','Ω','Ω','K','K','µ','ǅ','ʰ','Ⅻ','𝔸','中文','漢字','日本語','ひらがな','カタカナ','한국어','ᄀ','ไทย','العربية','עברית','हिन्दी','ক্ষ','Ελληνικά','Русский','ꙮ',
 '😀','👍🏽','👨‍👩‍👧','🇫🇷','❤️','✅','™','©','®','°','€','£','¥','₿','∑','∞','≠','→','\u0000','\u0001','\u007f','\u0080','\u009f','\ud800','\udfff',
 '<|im_start|>','<|im_end|>','<|endoftext|>','<s>','</s>','<unk>','<|begin_of_text|>','<|eot_id|>','<|fim_prefix|>','<|end|>','<|user|>','<|assistant|>','<start_of_turn>','<mask>',
 'don\'t','I\'m',' the',' The','THE','camelCase','snake_case','x=1+2','http://a.b/c?d=e','😀😀😀','                ','\n\n\n','\n \n','  \n  ','\t\t\n'];
const strings: string[] = [];
for (let i = 0; i < 400; i++) {
  const n = 1 + Math.floor(rnd() * 8);
  let s = '';
  for (let j = 0; j < n; j++) s += atoms[Math.floor(rnd() * atoms.length)];
  strings.push(s);
}
const only = process.argv[2];
for (const f of readdirSync(dir).filter((f) => f.endsWith('.gguf'))) {
  if (only && !f.includes(only)) continue;
  const file = await readGguf(sourceFromBytes(new Uint8Array(readFileSync(dir + f))));
  let tok: Tokenizer;
  try { tok = Tokenizer.fromGguf(file); } catch (e) { console.log(f, 'unsupported:', (e as Error).message.slice(0, 80)); continue; }
  const model = await llama.loadModel({ modelPath: dir + f, vocabOnly: true });
  let pass = 0, fail = 0, dpass = 0, dfail = 0;
  for (const special of [false, true]) for (const s of strings) {
    const want = model.tokenize(s, special).map(Number);
    const got = tok.encode(s, { parseSpecial: special });
    if (JSON.stringify(got) === JSON.stringify(want)) pass++;
    else { fail++; if (fail <= 4) console.log('  FAIL', special, JSON.stringify(s), '\n   got ', got.join(' '), '\n   want', want.join(' ')); }
    // detokenize: node-llama-cpp detokenize(tokens, specialTokens)
    const wantText = model.detokenize(want as never, special);
    const gotText = tok.decode(want, { skipSpecial: !special, cleanSpaces: true });
    if (wantText === gotText) dpass++; else { dfail++; if (dfail <= 3) console.log('  DFAIL', special, JSON.stringify(s), JSON.stringify(gotText), JSON.stringify(wantText)); }
  }
  console.log(f, `encode ${pass}/${pass + fail}`, `decode ${dpass}/${dpass + dfail}`);
  await model.dispose();
}
