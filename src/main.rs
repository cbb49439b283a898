fn main() {
    tch::manual_seed(0);
    println!("cuda {} threads {}", tch::Cuda::is_available(), tch::get_num_threads());
}
