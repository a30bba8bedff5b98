use std::collections::HashMap;

pub struct Cache {
    map: HashMap<String, String>,
    hit_count: u64,
}

impl Cache {
    pub fn new() -> Self {
        Cache { map: HashMap::new(), hit_count: 0 }
    }

    pub fn get(&mut self, key: &str) -> Option<&String> {
        let v = self.map.get(key);
        if v.is_some() {
            self.hit_count += 1;
        }
        v
    }
}
