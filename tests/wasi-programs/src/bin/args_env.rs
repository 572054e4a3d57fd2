//! Prints its arguments (after its name) and its environment, sorted.

fn main() {
    for (index, arg) in std::env::args().enumerate().skip(1) {
        println!("arg {index}: {arg:?}");
    }
    let mut vars: Vec<(String, String)> = std::env::vars().collect();
    vars.sort();
    for (key, value) in vars {
        println!("env {key:?} = {value:?}");
    }
    println!("var HOME: {:?}", std::env::var("HOME").ok());
}
