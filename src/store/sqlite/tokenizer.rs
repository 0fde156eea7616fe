//! SQLite's `unicode61` tokenizer, faster: the same tokens, from a lookup table.
//!
//! The search index (`inquiries_fts`, `tokenize = 'unicode61 remove_diacritics 2'`)
//! spends most of its time in `unicode61` deciding, character by character,
//! whether a character is a letter or digit and what it folds to: binary
//! searches over SQLite's Unicode tables for every Cyrillic or Chinese character.
//! Those answers depend on the character alone, so this module asks SQLite's own
//! tokenizer once per process about every code point and keeps its answers in a
//! table (two levels, blocks of 256 code points, identical blocks shared: about
//! 100 KB), then tokenizes with one lookup per character.
//!
//! It is registered on the indexer's connection under the same name, which
//! FTS5 then finds first (a tokenizer registered later shadows an earlier one of
//! the same name). The schema is unchanged and every token is the built-in one's,
//! byte for byte, at the same offsets (tested against it below), so a connection
//! without it (the read pool, the `sqlite3` shell) reads and writes the same
//! index. Anything else falls through to the built-in tokenizer: other
//! arguments, text that is not UTF-8, a table not yet built or that could not be.
//!
//! This is the crate's only `unsafe` code: FTS5's tokenizer interface is C.

#![allow(unsafe_code)]

use std::collections::HashMap;
use std::ffi::{c_char, c_int, c_void, CStr, CString};
use std::ptr;
use std::sync::OnceLock;

use rusqlite::ffi;

const NAME: &CStr = c"unicode61";
/// The one configuration the table answers for: `migrations/sqlite/0003_admin.sql`.
const ARGUMENTS: [&str; 2] = ["remove_diacritics", "2"];

/// What a character does: ends a token, starts (or continues) one, or only
/// continues one (combining marks: `unicode61` skips them between tokens).
const SEPARATOR: u32 = 0;
const STARTS: u32 = 1;
const CONTINUES: u32 = 2;

const BLOCK: usize = 256;
const CODE_POINTS: u32 = 0x11_0000;

/// Per code point: its class in the top two bits and what it folds to (0:
/// nothing) as a difference from itself in the low 30, so that the blocks of
/// characters that fold to themselves are alike and shared.
struct Table {
    index: Vec<u16>,
    blocks: Vec<[u32; BLOCK]>,
}

impl Table {
    fn entry(&self, c: u32) -> (u32, u32) {
        let block = self.index[(c as usize) / BLOCK] as usize;
        let entry = self.blocks[block][(c as usize) % BLOCK];
        let delta = ((entry << 2) as i32 >> 2) as u32;
        (entry >> 30, c.wrapping_add(delta))
    }

    /// Appends the next block: the entries of code points from `first`.
    fn push(&mut self, seen: &mut HashMap<[u32; BLOCK], u16>, first: u32, entries: &[(u32, u32)]) -> Option<()> {
        let mut block = [0; BLOCK];
        for ((slot, &(class, fold)), c) in block.iter_mut().zip(entries).zip(first..) {
            *slot = class << 30 | (fold.wrapping_sub(c) & 0x3FFF_FFFF);
        }
        let at = match seen.get(&block) {
            Some(&at) => at,
            None => {
                let at = u16::try_from(self.blocks.len()).ok()?;
                self.blocks.push(block);
                seen.insert(block, at);
                at
            }
        };
        self.index.push(at);
        Some(())
    }

    /// Calls `emit(token, start, end)` for each token of `text`, as `unicode61`
    /// does: a token starts at a letter or digit and runs through letters,
    /// digits and combining marks, each folded; `start..end` are its bytes in
    /// `text`. Stops at the first answer that is not `SQLITE_OK`.
    fn tokenize(&self, text: &str, mut emit: impl FnMut(&[u8], usize, usize) -> c_int) -> c_int {
        let mut token = Vec::with_capacity(64);
        let mut start = None;
        let mut end = 0;
        for (at, ch) in text.char_indices() {
            let (class, fold) = self.entry(ch as u32);
            let in_token = match class {
                STARTS => true,
                CONTINUES => start.is_some(),
                _ => false,
            };
            if !in_token {
                if let Some(from) = start.take() {
                    let rc = emit(&token, from, end);
                    if rc != ffi::SQLITE_OK {
                        return rc;
                    }
                    token.clear();
                }
                continue;
            }
            start.get_or_insert(at);
            if let Some(folded) = char::from_u32(fold).filter(|&f| f != '\0') {
                // Slices of a known length: copied in place, not by a call to
                // memcpy per character (3 % of the writer's time, measured).
                let mut utf8 = [0; 4];
                match folded.encode_utf8(&mut utf8).len() {
                    1 => token.push(utf8[0]),
                    2 => token.extend_from_slice(&utf8[..2]),
                    3 => token.extend_from_slice(&utf8[..3]),
                    _ => token.extend_from_slice(&utf8),
                }
            }
            end = at + ch.len_utf8();
        }
        match start {
            Some(from) => emit(&token, from, end),
            None => ffi::SQLITE_OK,
        }
    }
}

/// The built-in tokenizer's entry points and the data they were registered with.
#[derive(Clone, Copy)]
struct Builtin {
    methods: ffi::fts5_tokenizer,
    data: *mut c_void,
}

/// One instance of the built-in tokenizer, deleted on drop.
struct Instance {
    builtin: Builtin,
    raw: *mut ffi::Fts5Tokenizer,
}

impl Instance {
    /// # Safety
    /// `args` must point to `count` NUL-terminated strings (or be null with 0).
    unsafe fn create(builtin: Builtin, args: *mut *const c_char, count: c_int) -> Result<Instance, c_int> {
        let create = builtin.methods.xCreate.ok_or(ffi::SQLITE_ERROR)?;
        let mut raw = ptr::null_mut();
        match create(builtin.data, args, count, &mut raw) {
            ffi::SQLITE_OK => Ok(Instance { builtin, raw }),
            rc => Err(rc),
        }
    }

    /// An instance configured with `args` (as a `tokenize = '… args'` clause).
    fn with(builtin: Builtin, args: &[&str]) -> Option<Instance> {
        let args: Vec<CString> = args.iter().map(|a| CString::new(*a).ok()).collect::<Option<_>>()?;
        let mut argv: Vec<*const c_char> = args.iter().map(|a| a.as_ptr()).collect();
        // SAFETY: argv holds that many C strings, which outlive the call.
        unsafe { Instance::create(builtin, argv.as_mut_ptr(), argv.len() as c_int) }.ok()
    }

    /// Tokenizes `text` with the built-in tokenizer.
    ///
    /// # Safety
    /// `text` must point to `len` bytes; `ctx` is what `x_token` expects.
    unsafe fn tokenize(
        &self,
        ctx: *mut c_void,
        flags: c_int,
        text: *const c_char,
        len: c_int,
        x_token: XToken,
    ) -> c_int {
        match self.builtin.methods.xTokenize {
            Some(tokenize) => tokenize(self.raw, ctx, flags, text, len, x_token),
            None => ffi::SQLITE_ERROR,
        }
    }

    /// Tokenizes `text`, calling `each(token, start, end)` for every token; an
    /// answer other than `SQLITE_OK` stops it, as with FTS5's own callbacks.
    /// `each` must not panic (it is called from C).
    fn each_token<F: FnMut(&[u8], c_int, c_int) -> c_int>(&self, text: &[u8], mut each: F) -> c_int {
        unsafe extern "C" fn call<F: FnMut(&[u8], c_int, c_int) -> c_int>(
            ctx: *mut c_void,
            _: c_int,
            token: *const c_char,
            len: c_int,
            start: c_int,
            end: c_int,
        ) -> c_int {
            // SAFETY: ctx is the `F` passed below; the token's bytes live through the call.
            let each = unsafe { &mut *ctx.cast::<F>() };
            each(unsafe { bytes_at(token, len) }, start, end)
        }
        let Ok(len) = c_int::try_from(text.len()) else {
            return ffi::SQLITE_TOOBIG;
        };
        // SAFETY: `text` and `each` outlive the call; `call::<F>` expects the `F` passed as ctx.
        unsafe { self.tokenize((&mut each as *mut F).cast(), 0, text.as_ptr().cast(), len, Some(call::<F>)) }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(delete) = self.builtin.methods.xDelete {
            // SAFETY: `raw` came from this tokenizer's xCreate and is deleted once.
            unsafe { delete(self.raw) }
        }
    }
}

/// The `len` bytes at `at`, as FTS5 passes a text or a token (none if `len` is not positive).
///
/// # Safety
/// `at` must point to `len` bytes that outlive `'a`.
unsafe fn bytes_at<'a>(at: *const c_char, len: c_int) -> &'a [u8] {
    if len <= 0 || at.is_null() {
        &[]
    } else {
        // SAFETY: as the caller promises.
        unsafe { std::slice::from_raw_parts(at.cast(), len as usize) }
    }
}

type XToken = Option<unsafe extern "C" fn(*mut c_void, c_int, *const c_char, c_int, c_int, c_int) -> c_int>;

/// An instance of ours: the built-in one for what the table cannot answer.
struct Ours {
    builtin: Instance,
    /// Configured as the table was built (`ARGUMENTS`).
    tabled: bool,
}

/// Built once per process, on a thread of its own (~0.1 s in a release
/// build), when the first text is tokenized: until it is there, and if it
/// cannot be built, tokenizing falls through to the built-in tokenizer.
static TABLE: OnceLock<Option<Table>> = OnceLock::new();

/// The table, built now by this thread if no other thread is building it.
fn table() -> Option<&'static Table> {
    TABLE
        .get_or_init(|| {
            let db = rusqlite::Connection::open_in_memory().ok()?;
            // SAFETY: `db` is open, used by this thread only, and outlives `builtin`'s use.
            let builtin = unsafe { find(fts5_api(db.handle()).ok()?) }.ok()?;
            let table = derive(builtin);
            match &table {
                Some(table) => tracing::info!(blocks = table.blocks.len(), "search tokenizer table built"),
                None => {
                    tracing::warn!("the search index keeps SQLite's own tokenizer: its answers did not fit a table")
                }
            }
            table
        })
        .as_ref()
}

/// Starts building the table on a thread of its own, the first time only.
fn start_building() {
    static BUILD: std::sync::Once = std::sync::Once::new();
    BUILD.call_once(|| {
        let spawned = std::thread::Builder::new().name("inquiryd-tokens".into()).spawn(|| {
            table();
        });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start building the tokenizer's table");
        }
    });
}

/// Registers the table-driven tokenizer on `db` as `unicode61`, once per
/// connection. The table is built when the first text is tokenized (so that
/// a server that indexes nothing never pays for it).
pub fn register(db: &rusqlite::Connection) -> Result<(), rusqlite::Error> {
    // SAFETY: the handle is open for as long as `db` is borrowed, and used on this thread only.
    unsafe { register_raw(db.handle()) }
}

/// # Safety
/// `db` must be an open connection that no other thread uses during the call.
unsafe fn register_raw(db: *mut ffi::sqlite3) -> Result<(), rusqlite::Error> {
    // SAFETY: as the caller promises.
    let api = unsafe { fts5_api(db) }?;
    // SAFETY: `api` is this connection's FTS5 global, valid while it is open.
    let builtin = unsafe { find(api) }?;
    let mut methods = ffi::fts5_tokenizer { xCreate: Some(create), xDelete: Some(delete), xTokenize: Some(tokenize) };
    let data = Box::into_raw(Box::new(builtin)).cast::<c_void>();
    // SAFETY: FTS5 copies `methods`; it owns `data` from here and frees it with `destroy`.
    let rc = unsafe {
        match (*api).xCreateTokenizer {
            Some(create_tokenizer) => create_tokenizer(api, NAME.as_ptr(), data, &mut methods, Some(destroy)),
            None => ffi::SQLITE_ERROR,
        }
    };
    if rc != ffi::SQLITE_OK {
        // SAFETY: not registered, so still ours.
        drop(unsafe { Box::from_raw(data.cast::<Builtin>()) });
        return Err(error(rc, "cannot register the search tokenizer"));
    }
    Ok(())
}

fn error(rc: c_int, what: &str) -> rusqlite::Error {
    rusqlite::Error::SqliteFailure(ffi::Error::new(rc), Some(what.to_owned()))
}

/// The connection's FTS5 interface (the documented way: `SELECT fts5(?)` with a pointer bound).
///
/// # Safety
/// `db` must be an open connection used by this thread only.
unsafe fn fts5_api(db: *mut ffi::sqlite3) -> Result<*mut ffi::fts5_api, rusqlite::Error> {
    let mut api: *mut ffi::fts5_api = ptr::null_mut();
    let mut stmt = ptr::null_mut();
    let mut rc = ffi::sqlite3_prepare_v2(db, c"SELECT fts5(?1)".as_ptr(), -1, &mut stmt, ptr::null_mut());
    if rc == ffi::SQLITE_OK {
        let out = (&mut api as *mut *mut ffi::fts5_api).cast::<c_void>();
        rc = ffi::sqlite3_bind_pointer(stmt, 1, out, c"fts5_api_ptr".as_ptr(), None);
        if rc == ffi::SQLITE_OK {
            ffi::sqlite3_step(stmt);
        }
    }
    ffi::sqlite3_finalize(stmt);
    if api.is_null() || (*api).iVersion < 2 {
        return Err(error(ffi::SQLITE_ERROR, "FTS5 is not available"));
    }
    Ok(api)
}

/// The tokenizer FTS5 finds under our name now.
///
/// # Safety
/// `api` must be a live connection's FTS5 interface.
unsafe fn find(api: *mut ffi::fts5_api) -> Result<Builtin, rusqlite::Error> {
    let mut methods = ffi::fts5_tokenizer { xCreate: None, xDelete: None, xTokenize: None };
    let mut data = ptr::null_mut();
    let rc = match (*api).xFindTokenizer {
        Some(find) => find(api, NAME.as_ptr(), &mut data, &mut methods),
        None => ffi::SQLITE_ERROR,
    };
    if rc != ffi::SQLITE_OK {
        return Err(error(rc, "no unicode61 tokenizer"));
    }
    Ok(Builtin { methods, data })
}

/// Asks the built-in tokenizer about every code point, in two texts of
/// fixed-width slots padded with spaces (a separator): in `" c"` a token
/// means that `c` starts one, and the token is what `c` folds to; in `"ac"`
/// the token runs through `c` if `c` continues one. A block at a time, so
/// that it holds little besides the table. `None` if the answers do not fit
/// this model.
fn derive(builtin: Builtin) -> Option<Table> {
    let instance = Instance::with(builtin, &ARGUMENTS)?;
    let mut table = Table { index: Vec::with_capacity(CODE_POINTS as usize / BLOCK), blocks: Vec::new() };
    let mut seen = HashMap::new();
    let mut entries = Vec::with_capacity(BLOCK);
    for first in (0..CODE_POINTS).step_by(BLOCK) {
        let block = first..first + BLOCK as u32;
        let alone = probe(&instance, ' ', block.clone())?;
        let after = probe(&instance, 'a', block.clone())?;
        entries.clear();
        for (c, (alone, after)) in block.zip(alone.into_iter().zip(after)) {
            let width = char::from_u32(c).map_or(1, char::len_utf8) as u8;
            let continues = match after {
                Some(Token { at: 0, len, fold }) if len == 1 + width => Some(fold),
                Some(Token { at: 0, len: 1, fold: 0 }) => None,
                _ => return None,
            };
            entries.push(match (alone, continues) {
                (Some(Token { at: 1, len, fold }), Some(folded)) if len == width && fold == folded => (STARTS, fold),
                (None, Some(folded)) => (CONTINUES, folded),
                (None, None) => (SEPARATOR, 0),
                _ => return None,
            });
        }
        table.push(&mut seen, first, &entries)?;
    }
    Some(table)
}

/// The first token of a probe's slot: where it starts in the slot, its length
/// in the text, and what the probed character folded to (0: nothing).
#[derive(Clone, Copy)]
struct Token {
    at: u8,
    len: u8,
    fold: u32,
}

const SLOT: usize = 6;

/// Tokenizes one slot per code point, `first` and the code point (a space for
/// the surrogates, which a string cannot hold), padded with spaces to `SLOT`
/// bytes, and returns each slot's token. The token in `"ac"` is `a` and then
/// what `c` folds to.
fn probe(instance: &Instance, first: char, code_points: std::ops::Range<u32>) -> Option<Vec<Option<Token>>> {
    let mut text = String::with_capacity(code_points.len() * SLOT);
    let mut slots = vec![None; code_points.len()];
    for c in code_points.map(|c| char::from_u32(c).unwrap_or(' ')) {
        let before = text.len();
        text.push(first);
        text.push(c);
        text.extend(std::iter::repeat_n(' ', SLOT - (text.len() - before)));
    }
    let mut ok = true;
    let rc = instance.each_token(text.as_bytes(), |bytes, start, end| {
        let (slot, at) = (start as usize / SLOT, start as usize % SLOT);
        let text = std::str::from_utf8(bytes).ok();
        // "ac" gives "a" and the fold of c; " c" gives the fold of c alone.
        let folded = match first {
            ' ' => text,
            first => text.and_then(|t| t.strip_prefix(first)),
        };
        match (folded.and_then(fold), slots.get_mut(slot)) {
            (Some(fold), Some(place @ None)) => *place = Some(Token { at: at as u8, len: (end - start) as u8, fold }),
            _ => ok = false,
        }
        ffi::SQLITE_OK
    });
    (rc == ffi::SQLITE_OK && ok).then_some(slots)
}

/// A folded character as the table keeps it: its code point, 0 for none.
fn fold(folded: &str) -> Option<u32> {
    let mut chars = folded.chars();
    match (chars.next(), chars.next()) {
        (None, _) => Some(0),
        (Some(c), None) => Some(c as u32),
        _ => None,
    }
}

unsafe extern "C" fn create(
    data: *mut c_void,
    args: *mut *const c_char,
    count: c_int,
    out: *mut *mut ffi::Fts5Tokenizer,
) -> c_int {
    // SAFETY: FTS5 passes the `Builtin` we registered, and `count` argument strings.
    let builtin = unsafe { *data.cast::<Builtin>() };
    let arg = |i: usize| -> &CStr {
        // SAFETY: i < count, and each argument is a C string.
        unsafe { CStr::from_ptr(*args.add(i)) }
    };
    let same = usize::try_from(count) == Ok(ARGUMENTS.len())
        && ARGUMENTS.iter().enumerate().all(|(i, a)| arg(i).to_bytes() == a.as_bytes());
    match unsafe { Instance::create(builtin, args, count) } {
        Ok(instance) => {
            let ours = Box::new(Ours { builtin: instance, tabled: same });
            // SAFETY: FTS5 gives out a place for the new instance.
            unsafe { *out = Box::into_raw(ours).cast() };
            ffi::SQLITE_OK
        }
        Err(rc) => rc,
    }
}

unsafe extern "C" fn delete(tokenizer: *mut ffi::Fts5Tokenizer) {
    // SAFETY: made by `create` and deleted once by FTS5.
    drop(unsafe { Box::from_raw(tokenizer.cast::<Ours>()) });
}

unsafe extern "C" fn destroy(data: *mut c_void) {
    // SAFETY: the `Builtin` boxed in `register`, freed once when the connection closes.
    drop(unsafe { Box::from_raw(data.cast::<Builtin>()) });
}

unsafe extern "C" fn tokenize(
    tokenizer: *mut ffi::Fts5Tokenizer,
    ctx: *mut c_void,
    flags: c_int,
    text: *const c_char,
    len: c_int,
    x_token: XToken,
) -> c_int {
    // SAFETY: made by `create`; FTS5 passes `len` bytes of text.
    let ours = unsafe { &*tokenizer.cast::<Ours>() };
    let bytes = unsafe { bytes_at(text, len) };
    let table = match TABLE.get() {
        Some(table) => table.as_ref().filter(|_| ours.tabled),
        None => {
            start_building();
            None
        }
    };
    let (Some(table), Ok(text_str), Some(emit)) = (table, std::str::from_utf8(bytes), x_token) else {
        return unsafe { ours.builtin.tokenize(ctx, flags, text, len, x_token) };
    };
    let tokenized = std::panic::catch_unwind(|| {
        table.tokenize(text_str, |token, start, end| {
            // SAFETY: FTS5's callback with its own context; the token lives through the call.
            unsafe { emit(ctx, 0, token.as_ptr().cast(), token.len() as c_int, start as c_int, end as c_int) }
        })
    });
    match tokenized {
        Ok(ffi::SQLITE_DONE) => ffi::SQLITE_OK,
        Ok(rc) => rc,
        Err(_) => ffi::SQLITE_INTERNAL,
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    type Tokens = Vec<(Vec<u8>, c_int, c_int)>;

    /// What the tokenizer FTS5 finds as `unicode61` on `db` yields for `text`,
    /// configured as the search index configures it: each token's bytes and offsets.
    fn tokens(db: &rusqlite::Connection, text: impl AsRef<[u8]>) -> Tokens {
        let (tokens, rc) = tokenized(db, &ARGUMENTS, text.as_ref(), None);
        assert_eq!(rc, ffi::SQLITE_OK);
        tokens
    }

    /// The same, configured with `args`, and with the callback answering `code`
    /// from its `n`th token on (as FTS5's own callbacks do on an error): the
    /// tokens it was given and the result.
    fn tokenized(
        db: &rusqlite::Connection,
        args: &[&str],
        text: &[u8],
        answer: Option<(usize, c_int)>,
    ) -> (Tokens, c_int) {
        let found = unsafe { find(fts5_api(db.handle()).unwrap()) }.unwrap();
        let instance = Instance::with(found, args).unwrap();
        let mut tokens = Tokens::new();
        let rc = instance.each_token(text, |bytes, start, end| {
            tokens.push((bytes.to_vec(), start, end));
            match answer {
                Some((n, code)) if tokens.len() >= n => code,
                _ => ffi::SQLITE_OK,
            }
        });
        (tokens, rc)
    }

    /// A connection with SQLite's own tokenizer, and one with ours registered.
    fn pair() -> (rusqlite::Connection, rusqlite::Connection) {
        let builtin = rusqlite::Connection::open_in_memory().unwrap();
        let ours = rusqlite::Connection::open_in_memory().unwrap();
        register(&ours).unwrap();
        assert!(table().is_some(), "the table is built");
        let found = unsafe { find(fts5_api(ours.handle()).unwrap()) }.unwrap();
        assert!(
            found.methods.xTokenize.is_some_and(|f| std::ptr::fn_addr_eq(f, tokenize as XTokenize)),
            "FTS5 finds ours under the built-in's name"
        );
        (builtin, ours)
    }

    type XTokenize =
        unsafe extern "C" fn(*mut ffi::Fts5Tokenizer, *mut c_void, c_int, *const c_char, c_int, XToken) -> c_int;

    fn texts() -> impl Strategy<Value = String> {
        let special: Vec<char> =
            "\0\u{FFFD}\u{FFFE}\u{FFFF}\u{E000}\u{F0000}\u{10FFFF}😀👍🏽ß ẞİıŉǅ ̈ ҉٠١".chars().collect();
        let kazakh: Vec<char> = "ӘәҒғҚқҢңӨөҰұҮүҺһІі".chars().collect();
        let piece = prop_oneof![
            any::<char>(),
            proptest::char::range(' ', '~'),
            proptest::char::range('\u{400}', '\u{4FF}'),
            proptest::sample::select(kazakh),
            proptest::char::range('\u{4E00}', '\u{9FFF}'),
            proptest::char::range('\u{300}', '\u{36F}'),
            proptest::char::range('\u{C0}', '\u{24F}'),
            proptest::char::range('\u{600}', '\u{6FF}'),
            proptest::sample::select(special),
        ];
        proptest::collection::vec(piece, 0..80).prop_map(|chars| chars.into_iter().collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        #[test]
        fn its_tokens_are_unicode61s_byte_for_byte(text in texts()) {
            let (builtin, ours) = pair();
            prop_assert_eq!(tokens(&ours, &text), tokens(&builtin, &text));
        }

        #[test]
        fn text_that_is_not_utf8_is_tokenized_as_unicode61_does(
            bytes in proptest::collection::vec(any::<u8>(), 0..64),
            text in texts(),
        ) {
            let (builtin, ours) = pair();
            let mut mixed = text.into_bytes();
            mixed.extend(bytes);
            prop_assert_eq!(tokens(&ours, &mixed), tokens(&builtin, &mixed));
        }
    }

    #[test]
    fn every_code_point_tokenizes_as_in_unicode61_between_letters_and_alone() {
        let (builtin, ours) = pair();
        for plane in 0..(CODE_POINTS / 0x1_0000) {
            let text: String = (plane * 0x1_0000..(plane + 1) * 0x1_0000)
                .filter_map(char::from_u32)
                .map(|c| format!("x{c}y {c} {c}{c}Z{c}|"))
                .collect();
            assert!(tokens(&ours, &text) == tokens(&builtin, &text), "plane {plane}");
        }
    }

    #[test]
    fn an_index_it_wrote_passes_the_builtin_tokenizers_integrity_check() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fts.db");
        let ours = rusqlite::Connection::open(&path).unwrap();
        register(&ours).unwrap();
        assert!(table().is_some());
        ours.execute_batch("CREATE VIRTUAL TABLE t USING fts5 (body, tokenize = 'unicode61 remove_diacritics 2');")
            .unwrap();
        let bodies = [
            "Здравствуйте! Прошу прислать программу семинара «Квантовые материалы» и условия участия.",
            "您好，我想了解贵研究所的博士后职位申请条件。谢谢！",
            "Crème brûlée, naïve café: ÀÉÎÕÜ — Ǆemal İstanbul ß ﬁ",
            "Сәлеметсіз бе! Қазақ тіліндегі хат. ",
            "Hello, could you send the 2026 report (PDF) to me? ẍ̧y",
        ];
        for body in bodies {
            ours.execute("INSERT INTO t (body) VALUES (?1)", [crate::store::search::spaced(body)]).unwrap();
        }
        let builtin = rusqlite::Connection::open(&path).unwrap();
        builtin.execute("INSERT INTO t (t, rank) VALUES ('integrity-check', 1)", []).unwrap();
        let count = |q: &str| -> i64 {
            builtin.query_row("SELECT count(*) FROM t WHERE t MATCH ?1", [q], |r| r.get(0)).unwrap()
        };
        assert_eq!((count("\"研 究\""), count("creme"), count("семинара"), count("қазақ")), (1, 1, 1, 1));
    }

    #[test]
    fn it_stops_where_the_callback_says_and_answers_as_unicode61_does() {
        let (builtin, ours) = pair();
        // Seven tokens. SQLITE_DONE stops without an error; any other code is the result.
        let text = "Здравствуйте, 研 究 所 and Crème brûlée".as_bytes();
        for (answer, count, result) in [
            ((1, ffi::SQLITE_DONE), 1, ffi::SQLITE_OK),
            ((3, ffi::SQLITE_DONE), 3, ffi::SQLITE_OK),
            ((2, ffi::SQLITE_NOMEM), 2, ffi::SQLITE_NOMEM),
            ((7, ffi::SQLITE_ERROR), 7, ffi::SQLITE_ERROR),
            ((8, ffi::SQLITE_ERROR), 7, ffi::SQLITE_OK),
        ] {
            let (mine, rc) = tokenized(&ours, &ARGUMENTS, text, Some(answer));
            assert_eq!((mine.len(), rc), (count, result), "{answer:?}");
            assert_eq!((mine, rc), tokenized(&builtin, &ARGUMENTS, text, Some(answer)), "{answer:?}");
        }
    }

    #[test]
    fn other_arguments_tokenize_as_unicode61_does_with_them() {
        let (builtin, ours) = pair();
        // ǘ and ệ carry two accents each: only remove_diacritics 2 drops both.
        let text = "Crème brûlée, naïve café: e-mail ǘ Việt ÀÉÎÕÜ Ǆemal İstanbul ß Здравствуйте 研究".as_bytes();
        for args in [&[][..], &["remove_diacritics", "0"], &["remove_diacritics", "1"], &["tokenchars", "-"]] {
            let mine = tokenized(&ours, args, text, None);
            assert_eq!(mine, tokenized(&builtin, args, text, None), "{args:?}");
            assert_ne!(mine, tokenized(&builtin, &ARGUMENTS, text, None), "{args:?} differs from the index's");
        }
    }

    #[test]
    fn the_table_is_small() {
        let table = table().unwrap();
        assert!(table.blocks.len() < 400, "{} blocks of 1 KB", table.blocks.len());
    }
}
