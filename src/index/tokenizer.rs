//! Word splitting for the full-text fields: runs of letters and digits are words;
//! runs of CJK characters (Han, Hiragana, Katakana, Hangul), which are written
//! without spaces, become overlapping character pairs, so that any word of two or
//! more characters is found as a phrase of pairs. Lower-casing and accent folding
//! follow in the analyzer (see `schema.rs`).

use tantivy::tokenizer::{Token, TokenStream, Tokenizer};

/// The CJK-aware word tokenizer.
#[derive(Clone, Default)]
pub struct WordTokenizer {
    tokens: Vec<Token>,
}

pub struct WordTokenStream<'a> {
    tokens: &'a mut Vec<Token>,
    at: usize,
}

fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF      // Hiragana, Katakana
        | 0x3400..=0x4DBF    // CJK extension A
        | 0x4E00..=0x9FFF    // CJK unified ideographs
        | 0xAC00..=0xD7AF    // Hangul syllables
        | 0x1100..=0x11FF    // Hangul jamo
        | 0xF900..=0xFAFF    // CJK compatibility ideographs
        | 0xFF66..=0xFF9D    // half-width Katakana
        | 0x20000..=0x2FA1F) // CJK extensions B–F, compatibility supplement
}

/// Splits `text` into tokens (byte offsets, positions in order).
pub fn tokenize(text: &str, out: &mut Vec<Token>) {
    let mut position = 0usize;
    let mut push = |out: &mut Vec<Token>, from: usize, to: usize| {
        out.push(Token {
            offset_from: from,
            offset_to: to,
            position,
            text: text[from..to].to_string(),
            position_length: 1,
        });
        position += 1;
    };
    let chars: Vec<(usize, char)> = text.char_indices().collect();
    let end_of = |i: usize| chars.get(i).map_or(text.len(), |(o, _)| *o);
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i].1;
        if is_cjk(c) {
            let start = i;
            while i < chars.len() && is_cjk(chars[i].1) {
                i += 1;
            }
            if i - start == 1 {
                push(out, chars[start].0, end_of(i));
            } else {
                for (k, (offset, _)) in chars.iter().enumerate().take(i - 1).skip(start) {
                    push(out, *offset, end_of(k + 2));
                }
            }
        } else if c.is_alphanumeric() {
            let start = i;
            while i < chars.len() && chars[i].1.is_alphanumeric() && !is_cjk(chars[i].1) {
                i += 1;
            }
            push(out, chars[start].0, end_of(i));
        } else {
            i += 1;
        }
    }
}

impl Tokenizer for WordTokenizer {
    type TokenStream<'a> = WordTokenStream<'a>;

    fn token_stream<'a>(&'a mut self, text: &'a str) -> WordTokenStream<'a> {
        self.tokens.clear();
        tokenize(text, &mut self.tokens);
        WordTokenStream {
            tokens: &mut self.tokens,
            at: usize::MAX,
        }
    }
}

impl TokenStream for WordTokenStream<'_> {
    fn advance(&mut self) -> bool {
        self.at = self.at.wrapping_add(1);
        self.at < self.tokens.len()
    }
    fn token(&self) -> &Token {
        &self.tokens[self.at]
    }
    fn token_mut(&mut self) -> &mut Token {
        &mut self.tokens[self.at]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn words(s: &str) -> Vec<String> {
        let mut v = Vec::new();
        tokenize(s, &mut v);
        v.into_iter().map(|t| t.text).collect()
    }

    #[test]
    fn table() {
        assert_eq!(words("Hello, world-42!"), ["Hello", "world", "42"]);
        assert_eq!(words("alice@example.com"), ["alice", "example", "com"]);
        assert_eq!(words("東京都に行く"), ["東京", "京都", "都に", "に行", "行く"]);
        assert_eq!(words("日 本"), ["日", "本"]);
        assert_eq!(words("Café crème"), ["Café", "crème"]);
        assert_eq!(words("한국어 text"), ["한국", "국어", "text"]);
        assert_eq!(words(""), Vec::<String>::new());
    }
}
