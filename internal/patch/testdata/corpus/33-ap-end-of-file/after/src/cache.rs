use std::collections::HashMap;

pub struct Cache {
    map: HashMap<String, String>,
    hits: u64,
}

impl Cache {
    pub fn new() -> Self {
        Cache { map: HashMap::new(), hits: 0 }
    }

    pub fn get(&mut self, key: &str) -> Option<&String> {
        let v = self.map.get(key);
        if v.is_some() {
            self.hits += 1;
        }
        v
    }
}

impl Default for Cache {
    fn default() -> Self {
        Self::new()
    }
}
