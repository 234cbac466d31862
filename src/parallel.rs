//! Work split across threads with scoped threads (no pool: each phase that
//! uses it runs once per command).

/// One thread per core, for work that keeps a core busy.
pub fn cores() -> usize {
    std::thread::available_parallelism().map_or(2, |n| n.get())
}

/// Maps `f` over `items` on up to `threads` threads, each taking one run of
/// consecutive items; the results come back in input order.
pub fn map<T: Sync, R: Send>(items: &[T], threads: usize, f: impl Fn(&T) -> R + Sync) -> Vec<R> {
    map_with(items, threads, || (), |(), item| f(item))
}

/// [`map`] with per-thread scratch state made by `init` (a sanitizer, a
/// score buffer): made once per thread, not per item.
pub fn map_with<T: Sync, R: Send, S>(
    items: &[T],
    threads: usize,
    init: impl Fn() -> S + Sync,
    f: impl Fn(&mut S, &T) -> R + Sync,
) -> Vec<R> {
    let (init, f) = (&init, &f);
    let run_of = move |part: &[T]| {
        let mut state = init();
        part.iter()
            .map(|item| f(&mut state, item))
            .collect::<Vec<R>>()
    };
    if threads <= 1 || items.len() < 2 {
        return run_of(items);
    }
    let run = items.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = items
            .chunks(run)
            .map(|part| scope.spawn(move || run_of(part)))
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    })
}

/// Maps `f` over `items` on `threads` threads and hands the results to
/// `consume` on the calling thread, in input order, as they are ready: the
/// consumer works while the next results are computed, and only a bounded
/// number wait in memory. An error from `consume` stops the workers and is
/// returned.
pub fn pipeline<T: Sync, R: Send, E>(
    items: &[T],
    threads: usize,
    f: impl Fn(&T) -> R + Sync,
    mut consume: impl FnMut(R) -> Result<(), E>,
) -> Result<(), E> {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    let threads = threads.clamp(1, items.len().max(1));
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (sender, receiver) = std::sync::mpsc::sync_channel::<(usize, R)>(threads * 8);
    std::thread::scope(|scope| {
        for _ in 0..threads {
            let (sender, next, stop, f) = (sender.clone(), &next, &stop, &f);
            scope.spawn(move || {
                // Items are taken in order, so results arrive nearly in order.
                while !stop.load(Ordering::Relaxed) {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some(item) = items.get(i) else { break };
                    if sender.send((i, f(item))).is_err() {
                        break;
                    }
                }
            });
        }
        drop(sender);
        let mut early: std::collections::BTreeMap<usize, R> = Default::default();
        let mut wanted = 0;
        for (i, result) in receiver.iter() {
            early.insert(i, result);
            while let Some(result) = early.remove(&wanted) {
                wanted += 1;
                if let Err(e) = consume(result) {
                    stop.store(true, Ordering::Relaxed);
                    // Dropping the receiver unblocks workers waiting to send.
                    drop(receiver);
                    return Err(e);
                }
            }
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_input_order() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = super::map(&items, 3, |i| i * 2);
        assert_eq!(doubled, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        assert!(super::map(&[] as &[u32], 4, |i| *i).is_empty());
    }

    #[test]
    fn pipeline_consumes_in_order_and_stops_on_error() {
        let items: Vec<u32> = (0..5000).collect();
        let mut seen = Vec::new();
        super::pipeline(
            &items,
            4,
            |i| i * 3,
            |r| {
                seen.push(r);
                Ok::<(), ()>(())
            },
        )
        .unwrap();
        assert_eq!(seen, (0..5000).map(|i| i * 3).collect::<Vec<_>>());

        let mut consumed = 0;
        let result = super::pipeline(
            &items,
            4,
            |i| *i,
            |r| {
                consumed += 1;
                if r == 100 { Err(r) } else { Ok(()) }
            },
        );
        assert_eq!(result, Err(100));
        assert_eq!(consumed, 101);
    }
}
