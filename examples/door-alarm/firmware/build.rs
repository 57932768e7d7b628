fn main() {
    // esp-hal's linker script (memory map, sections, the ROM functions' addresses).
    println!("cargo:rustc-link-arg=-Tlinkall.x");
}
