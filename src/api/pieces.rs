//! A response body of several byte pieces sent one after the other, each as it is: a page
//! assembled around entries kept with a decision goes out without being copied into one
//! buffer. Its exact length is known, so hyper answers with a `Content-Length`.

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use std::collections::VecDeque;
use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context, Poll};

pub struct Pieces {
    pieces: VecDeque<Bytes>,
    remaining: u64,
}

impl Pieces {
    pub fn new(pieces: Vec<Bytes>) -> Pieces {
        let pieces: VecDeque<Bytes> = pieces.into_iter().filter(|p| !p.is_empty()).collect();
        let remaining = pieces.iter().map(|p| p.len() as u64).sum();
        Pieces { pieces, remaining }
    }
}

impl Body for Pieces {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let this = self.get_mut();
        Poll::Ready(this.pieces.pop_front().map(|p| {
            this.remaining -= p.len() as u64;
            Ok(Frame::data(p))
        }))
    }

    fn is_end_stream(&self) -> bool {
        self.pieces.is_empty()
    }

    fn size_hint(&self) -> SizeHint {
        SizeHint::with_exact(self.remaining)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn the_pieces_arrive_in_order_with_their_exact_length() {
        let body = Pieces::new(vec![Bytes::from_static(b"{\"a\":["), Bytes::new(), Bytes::from_static(b"1,2]}")]);
        assert_eq!(body.size_hint().exact(), Some(11));
        let collected = axum::body::to_bytes(axum::body::Body::new(body), usize::MAX).await.unwrap();
        assert_eq!(&collected[..], b"{\"a\":[1,2]}");
    }
}
