//! Reads the next page from the database on a second thread while the current page is
//! written, so that the database and the formatting work at the same time.

use std::sync::mpsc;

use super::ExportError;
use crate::store::DbConnection;

/// Pages read ahead of the writer; each is one page of rows, so memory stays bounded.
const PAGES_AHEAD: usize = 2;

/// Calls `read_page` on a second thread until it returns `None`, and `write_page` with each
/// page on this thread, in order.
///
/// The connection is used only by the reading thread while this runs. Fails with the first
/// error of either side; the other side then stops at its next page.
pub fn pipelined<P: Send>(
    conn: &mut DbConnection,
    mut read_page: impl FnMut(&mut DbConnection) -> Result<Option<P>, ExportError> + Send,
    mut write_page: impl FnMut(P) -> Result<(), ExportError>,
) -> Result<(), ExportError> {
    std::thread::scope(|scope| {
        let (sender, receiver) = mpsc::sync_channel::<Result<P, ExportError>>(PAGES_AHEAD);
        scope.spawn(move || loop {
            let page = match read_page(conn) {
                Ok(Some(page)) => Ok(page),
                Ok(None) => return,
                Err(error) => Err(error),
            };
            let failed = page.is_err();
            // A send fails only when the writer stopped early, with an error of its own.
            if sender.send(page).is_err() || failed {
                return;
            }
        });
        for page in receiver {
            write_page(page?)?;
        }
        Ok(())
    })
}
