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

#[cfg(test)]
mod tests {
    #[test]
    fn keeps_input_order() {
        let items: Vec<u32> = (0..1000).collect();
        let doubled = super::map(&items, 3, |i| i * 2);
        assert_eq!(doubled, (0..1000).map(|i| i * 2).collect::<Vec<_>>());
        assert!(super::map(&[] as &[u32], 4, |i| *i).is_empty());
    }
}
